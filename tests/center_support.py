"""Driving the center's bundled processes through the HTTP API, as its clerks would.

The processes and forms are the real files under processes/ and forms/, deployed through the
API; service tasks run on the in-process executor and timers through the scheduler, on a
frozen clock the test moves.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from engine.runtime import clock
from engine.runtime.scheduler import Scheduler
from engine.store.models import SentMessage
from tests.api_support import ApiHarness
from tests.test_jobs import drain

ROOT = Path(__file__).resolve().parent.parent
CST = ZoneInfo("Asia/Shanghai")


def beijing(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CST).astimezone(UTC)


class Center(ApiHarness):
    """The hall: a front desk, back-office clerks of some departments, ops and the designer."""

    def __init__(self, app: Any, frozen: clock.FrozenClock) -> None:
        super().__init__(app)
        self.frozen = frozen
        self.user("designer", ["designer"])
        self.user("ops", ["ops"])
        self.user("front", ["clerk"], ["center"])
        self.user("front2", ["clerk"], ["center"])
        self.user("amr_clerk", ["clerk"], ["amr"])
        self.user("amr_chief", ["clerk"], ["amr"])
        self.user("hrss_clerk", ["clerk"], ["hrss"])
        self.user("leader", ["clerk"], ["leading"])
        self.clerks: set[str] = set()
        self.deploy()

    def deploy(self) -> None:
        files = [
            ("files", (path.name, path.read_bytes(), "application/octet-stream"))
            for path in [
                *sorted((ROOT / "processes").glob("*.bpmn")),
                *sorted((ROOT / "forms").glob("*.schema.json")),
            ]
        ]
        response = self.post("/api/definitions", "designer", files=files)
        assert response.status_code in (200, 201), response.text

    # --- time -----------------------------------------------------------------------------

    def move_to(self, text: str) -> None:
        """Jump to a Beijing time, then let timers fire and jobs run as the services would."""
        self.frozen.set(beijing(text))
        self.tokens.clear()  # a real clerk logs in again the next day
        self.settle()

    def settle(self) -> None:
        scheduler = Scheduler(self.app)
        for _ in range(10):
            fired = scheduler.tick()
            ran = drain(self.app)
            if not fired and not ran:
                return

    # --- cases and tasks -------------------------------------------------------------------

    def start(self, key: str, as_user: str, **variables: Any) -> dict[str, Any]:
        response = self.post(
            "/api/instances", as_user, json={"definition_key": key, "variables": variables}
        )
        assert response.status_code == 201, response.text
        self.settle()
        return response.json()

    def case(self, instance_id: str, as_user: str = "ops") -> dict[str, Any]:
        response = self.get(f"/api/instances/{instance_id}", as_user)
        assert response.status_code == 200, response.text
        return response.json()

    def queue(self, as_user: str, instance_id: str | None = None) -> list[dict[str, Any]]:
        """The open tasks a user's departments may take (their group worklist)."""
        response = self.get("/api/tasks", as_user, params={"scope": "group"})
        assert response.status_code == 200, response.text
        tasks = response.json()
        return [t for t in tasks if instance_id is None or t["instance_id"] == instance_id]

    def waiting(self, instance_id: str) -> list[str]:
        return sorted(
            t["element_id"] for t in self.case(instance_id)["tasks"] if t["state"] == "open"
        )

    def work(self, as_user: str, instance_id: str, element_id: str, **data: Any) -> None:
        """Claim the task from the user's own queue and complete it with a form."""
        mine = [t for t in self.queue(as_user, instance_id) if t["element_id"] == element_id]
        assert mine, (
            f"{as_user} does not see {element_id} in their queue; open: {self.waiting(instance_id)}"
        )
        self.finish(as_user, mine[0]["id"], data)

    def finish(
        self,
        as_user: str,
        task_id: str,
        data: dict[str, Any],
        settle: bool = True,
        claim: bool = True,
    ) -> None:
        """Complete a task; without `claim` straight from the queue, as Camunda allows."""
        if claim:
            response = self.post(f"/api/tasks/{task_id}/claim", as_user)
            assert response.status_code == 200, response.text
        response = self.post(f"/api/tasks/{task_id}/complete", as_user, json={"data": data})
        assert response.status_code == 200, response.text
        if settle:
            self.settle()

    def clerk_of(self, department: str) -> str:
        """A back-office clerk of the department, made on first use."""
        username = f"clerk_{department}"
        if username not in self.clerks:
            self.user(username, ["clerk"], [department])
            self.clerks.add(username)
        return username

    def sms_to(self, phone: str) -> list[str]:
        with self.app.database.read_session() as session:
            return list(
                session.scalars(
                    select(SentMessage.text).where(SentMessage.to == phone).order_by(SentMessage.id)
                )
            )

    def advance_workdays(self, instance_id: str, hours: float = 24) -> None:
        self.frozen.advance(timedelta(hours=hours))
        self.tokens.clear()
        self.settle()


def local(timestamp: str | None) -> str | None:
    """An API timestamp as Beijing wall-clock time, `YYYY-MM-DDTHH:MM`."""
    if timestamp is None:
        return None
    value = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return value.astimezone(CST).strftime("%Y-%m-%dT%H:%M")
