"""The timer scheduler: fires due timers as commands, and starts cases on timer start events.

Several schedulers may run at once: a due timer row is claimed (`firing`) under a row lock with
SKIP LOCKED on PostgreSQL, or under the write lock on SQLite, so exactly one of them fires it.
A claim whose scheduler died is taken over after STALE_CLAIM. Firing is a command on the
instance, so a timer that another command already fired is not fired twice either.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.event_definitions.timer import (
    CycleTimerEventDefinition,
    TimerEventDefinition,
)
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from engine.accounts.actor import Actor
from engine.bpmn.timers import QuartzCron, quartz_cron_of
from engine.errors import GovflowError
from engine.ops.metrics import observe_timer_lag
from engine.runtime import clock
from engine.runtime.deadlines import recompute
from engine.runtime.runner import CommandContext
from engine.store.models import DefinitionVersion, Instance, ProcessDefinition, Timer

if TYPE_CHECKING:
    from engine.app import Govflow

log = logging.getLogger("govflow.scheduler")

SCHEDULER = Actor("scheduler", frozenset({"ops"}))
STALE_CLAIM = timedelta(minutes=2)


@dataclass
class FireTimers:
    """Let an instance's due timers fire (the runner refreshes timers before every command)."""

    instance_id: str
    timer_ids: list[int] = field(default_factory=list)
    name = "timer"
    needs_workflow = True
    allowed_when_suspended = False
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        return self.instance_id

    def apply(self, ctx: CommandContext) -> None:
        rows = ctx.session.scalars(select(Timer).where(Timer.id.in_(self.timer_ids))).all()
        ctx.audit_data = {"timers": sorted(r.element_id for r in rows)}


@dataclass
class RecalculateTimer:
    """Move a waiting timer to the deadline its basis gives now (after a calendar import)."""

    instance_id: str
    timer_id: int
    name = "recalculate_timer"
    needs_workflow = True
    allowed_when_suspended = True
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        return self.instance_id

    def apply(self, ctx: CommandContext) -> str:
        row = ctx.session.get(Timer, self.timer_id)
        if row is None or row.state != "waiting" or not row.basis:
            ctx.changed = False
            return "nothing to recalculate"
        calendar = ctx.services.calendars.get()
        due, provisional = recompute(row.basis, calendar)
        try:
            task = ctx.workflow.get_task_from_id(UUID(row.task_id))
        except TaskNotFoundException:
            ctx.changed = False
            return "the timer is gone"
        if task is None or task._state != TaskState.WAITING:
            ctx.changed = False
            return "the timer is gone"
        task._set_internal_data(event_value=due.isoformat())
        row.due_at, row.provisional_year = due, provisional
        ctx.audit_element_id = row.element_id
        ctx.audit_data = {"due_at": due.isoformat(), "provisional_year": provisional}
        return f"due {due.isoformat()}"


def _claim(govflow: Govflow, now: datetime, limit: int) -> list[Timer]:
    with govflow.database.write_session() as session:
        live = or_(
            Timer.instance_id.is_(None),
            Timer.instance_id.in_(
                select(Instance.id).where(Instance.status.in_(("running", "waiting", "error")))
            ),
        )
        query = (
            select(Timer)
            .where(
                or_(
                    and_(Timer.state == "waiting", Timer.due_at <= now),
                    and_(Timer.state == "firing", Timer.fired_at < now - STALE_CLAIM),
                ),
                live,
            )
            .order_by(Timer.due_at)
            .limit(limit)
        )
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True, of=Timer)
        rows = list(session.scalars(query))
        for row in rows:
            row.state, row.fired_at = "firing", now
        session.flush()
        session.expunge_all()
        return rows


def schedule_start_timers(
    session: Session, version: DefinitionVersion, spec: Any, now: datetime
) -> int:
    """Timer start events of a newly deployed version wait in the timer table; the older
    versions' start timers of the same process stop (only the latest version starts cases)."""
    older = select(DefinitionVersion.id).where(
        DefinitionVersion.definition_id == version.definition_id, DefinitionVersion.id != version.id
    )
    for row in session.scalars(
        select(Timer).where(Timer.definition_version_id.in_(older), Timer.state == "waiting")
    ):
        row.state = "superseded"
    count = 0
    for task_spec in spec.task_specs.values():
        definition = getattr(task_spec, "event_definition", None)
        if not isinstance(task_spec, StartEvent) or not isinstance(
            definition, TimerEventDefinition
        ):
            continue
        due, remaining = first_occurrence(definition, now)
        if due is None:
            continue
        session.add(
            Timer(
                instance_id=None,
                definition_version_id=version.id,
                task_id="",
                element_id=task_spec.bpmn_id or task_spec.name,
                due_at=due,
                basis={"cycles_left": remaining} if remaining is not None else None,
                state="waiting",
                created_at=now,
            )
        )
        count += 1
    return count


def _literal(expression: str) -> str | None:
    text = expression.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return None


def _next_cron(cron: QuartzCron, after: datetime) -> datetime:
    return cron.next_after(after.astimezone()).astimezone(UTC)


def first_occurrence(
    definition: TimerEventDefinition, now: datetime
) -> tuple[datetime | None, int | None]:
    """When a start timer first fires, and (for cycles) how many more times after that."""
    cron = quartz_cron_of(definition.expression)
    if cron is not None:
        return _next_cron(cron, now), -1
    text = _literal(definition.expression or "")
    if text is None:
        return None, None
    if isinstance(definition, CycleTimerEventDefinition):
        cycles, start, duration = TimerEventDefinition.parse_iso_recurring_interval(text)
        if start < now:
            start = now + duration if cycles == -1 or cycles > 0 else start
        return start, (cycles - 1 if cycles > 0 else -1)
    parsed = TimerEventDefinition.parse_time_or_duration(text)
    if isinstance(parsed, datetime):
        return parsed, None
    return now + TimerEventDefinition.get_timedelta_from_start(parsed, now), None


def next_occurrence(definition: TimerEventDefinition, fired_at: datetime) -> datetime | None:
    cron = quartz_cron_of(definition.expression)
    if cron is not None:
        return _next_cron(cron, fired_at)
    text = _literal(definition.expression or "")
    if text is None or not isinstance(definition, CycleTimerEventDefinition):
        return None
    _cycles, _start, duration = TimerEventDefinition.parse_iso_recurring_interval(text)
    return fired_at + duration


class Scheduler:
    def __init__(self, govflow: Govflow, batch: int = 50) -> None:
        self.govflow = govflow
        self.batch = batch
        self.name = f"scheduler-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int:
        """Claim and fire the due timers; returns how many were claimed."""
        now = clock.now()
        rows = _claim(self.govflow, now, self.batch)
        by_instance: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            observe_timer_lag(row.due_at, now)
            if row.instance_id is None:
                self._start_case(row, now)
            else:
                by_instance[row.instance_id].append(row.id)
        for instance_id, ids in by_instance.items():
            try:
                self.govflow.runner.execute(FireTimers(instance_id, ids), SCHEDULER)
            except GovflowError as exc:
                log.warning("timers of %s not fired: %s", instance_id, exc.message)
        return len(rows)

    def _start_case(self, row: Timer, now: datetime) -> None:
        database = self.govflow.database
        with database.read_session() as session:
            version = session.get(DefinitionVersion, row.definition_version_id)
            definition = session.get(ProcessDefinition, version.definition_id) if version else None
            loaded = self.govflow.services.versions.get(session, version.id) if version else None
        if version is None or definition is None or loaded is None:
            return
        try:
            self.govflow.runner.start(
                definition.key, SCHEDULER, version=version.version, start_timer=row.element_id
            )
        except GovflowError as exc:
            log.warning("timer start of %s failed: %s", definition.key, exc.message)
        spec = loaded.spec.task_specs.get(row.element_id)
        definition_ = getattr(spec, "event_definition", None)
        following = next_occurrence(definition_, row.due_at) if definition_ is not None else None
        left = (row.basis or {}).get("cycles_left")
        with database.session() as session:
            stored = session.get(Timer, row.id)
            if stored is None:
                return
            stored.state = "done"
            if following is not None and left not in (0, None):
                session.add(
                    Timer(
                        instance_id=None,
                        definition_version_id=row.definition_version_id,
                        task_id="",
                        element_id=row.element_id,
                        due_at=following,
                        basis={"cycles_left": left - 1 if left > 0 else -1},
                        state="waiting",
                        created_at=now,
                    )
                )

    def run(self, poll_s: float = 1.0) -> None:
        while not self._stop.is_set():
            try:
                busy = self.tick() > 0
            except Exception:
                log.exception("scheduler round failed")
                busy = False
            if not busy:
                self._stop.wait(poll_s)

    def start(self, poll_s: float = 1.0) -> threading.Thread:
        self._thread = threading.Thread(
            target=self.run, args=(poll_s,), name=self.name, daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
