"""Calendar work for ops: importing or editing a year, and what that does to deadlines.

Deadlines counted through a year the calendar did not know are provisional; they keep the
basis they were counted from. Importing or editing that year recomputes them: task due dates
and case clocks directly, waiting timers through a command on their instance (the timer's
moment lives in the instance document).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update

from engine.accounts.actor import Actor
from engine.errors import Forbidden, GovflowError
from engine.runtime import clock, clocks
from engine.runtime.deadlines import recompute
from engine.runtime.scheduler import RecalculateTimer
from engine.runtime.workcalendar import YearFile, set_day, store_year
from engine.store.models import AuditEvent, HumanTask, SlaClock, TaskCandidate, Timer

if TYPE_CHECKING:
    from engine.app import Govflow


def _require_ops(actor: Actor) -> None:
    if not actor.has_role("ops", "admin"):
        raise Forbidden("changing the calendar needs the ops or admin role")


def import_year(
    govflow: Govflow, actor: Actor, year_file: YearFile, source: str = "import"
) -> dict[str, int]:
    _require_ops(actor)
    with govflow.database.session() as session:
        store_year(session, year_file, source)
        session.add(
            AuditEvent(
                actor=actor.username,
                command="calendar_import",
                data={
                    "year": year_file.year,
                    "holidays": [d.isoformat() for d, _ in year_file.holidays],
                    "workdays": [d.isoformat() for d, _ in year_file.workdays],
                },
            )
        )
    govflow.services.calendars.invalidate()
    return recompute_provisional(govflow, actor)


def edit_day(
    govflow: Govflow, actor: Actor, day: date, is_workday: bool, name: str
) -> dict[str, int]:
    _require_ops(actor)
    with govflow.database.session() as session:
        set_day(session, day, is_workday, name)
        session.add(
            AuditEvent(
                actor=actor.username,
                command="calendar_edit",
                data={"date": day.isoformat(), "is_workday": is_workday, "name": name},
            )
        )
    govflow.services.calendars.invalidate()
    return recompute_provisional(govflow, actor)


def recompute_provisional(govflow: Govflow, actor: Actor) -> dict[str, int]:
    """Recount every provisional deadline that has a basis; returns how many of each moved."""
    calendar = govflow.services.calendars.get()
    now = clock.now()
    moved = {"tasks": 0, "clocks": 0, "timers": 0, "still_provisional": 0}
    with govflow.database.session() as session:
        for task in session.scalars(
            select(HumanTask).where(
                HumanTask.state == "open", HumanTask.due_provisional_year.is_not(None)
            )
        ):
            if not task.due_basis:
                moved["still_provisional"] += 1
                continue
            task.due_at, task.due_provisional_year = recompute(task.due_basis, calendar)
            session.execute(
                update(TaskCandidate)
                .where(TaskCandidate.task_id == task.id)
                .values(due_at=task.due_at)
            )
            moved["tasks"] += 1
        for row in session.scalars(
            select(SlaClock).where(
                SlaClock.state != "stopped", SlaClock.provisional_year.is_not(None)
            )
        ):
            clocks.recompute(row, calendar)
            row.updated_at = now
            moved["clocks"] += 1
        waiting = list(
            session.scalars(
                select(Timer).where(
                    Timer.state == "waiting",
                    Timer.provisional_year.is_not(None),
                    Timer.instance_id.is_not(None),
                )
            )
        )
    for timer in waiting:
        if not timer.basis:
            moved["still_provisional"] += 1
            continue
        try:
            govflow.runner.execute(RecalculateTimer(timer.instance_id or "", timer.id), actor)
            moved["timers"] += 1
        except GovflowError:
            moved["still_provisional"] += 1
    return moved


def provisional_summary(govflow: Govflow) -> list[dict[str, Any]]:
    """Per year the calendar does not know: how many deadlines are provisional, and in how
    many cases."""
    per_year: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"tasks": 0, "timers": 0, "clocks": 0, "instances": set()}
    )
    with govflow.database.read_session() as session:
        for year, instance_id in session.execute(
            select(HumanTask.due_provisional_year, HumanTask.instance_id).where(
                HumanTask.state == "open", HumanTask.due_provisional_year.is_not(None)
            )
        ):
            per_year[year]["tasks"] += 1
            per_year[year]["instances"].add(instance_id)
        for year, instance_id in session.execute(
            select(Timer.provisional_year, Timer.instance_id).where(
                Timer.state == "waiting", Timer.provisional_year.is_not(None)
            )
        ):
            per_year[year]["timers"] += 1
            if instance_id:
                per_year[year]["instances"].add(instance_id)
        for year, instance_id in session.execute(
            select(SlaClock.provisional_year, SlaClock.instance_id).where(
                SlaClock.state != "stopped", SlaClock.provisional_year.is_not(None)
            )
        ):
            per_year[year]["clocks"] += 1
            per_year[year]["instances"].add(instance_id)
    return [
        {
            "year": year,
            "tasks": v["tasks"],
            "timers": v["timers"],
            "clocks": v["clocks"],
            "instances": len(v["instances"]),
        }
        for year, v in sorted(per_year.items())
    ]


def provisional_instances() -> Any:
    """SQL condition: an instance with any provisional deadline (for listings)."""
    from engine.store.models import Instance

    return or_(
        Instance.id.in_(
            select(HumanTask.instance_id).where(
                HumanTask.state == "open", HumanTask.due_provisional_year.is_not(None)
            )
        ),
        Instance.id.in_(
            select(SlaClock.instance_id).where(
                SlaClock.state != "stopped", SlaClock.provisional_year.is_not(None)
            )
        ),
        Instance.id.in_(
            select(Timer.instance_id).where(
                Timer.state == "waiting", Timer.provisional_year.is_not(None)
            )
        ),
    )
