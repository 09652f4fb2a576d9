"""SLA clocks of a case: time limits in working days that pause and resume.

A clock counts `workdays` working days after the day it starts. Pausing (补正 supplement
requests, 特别程序 such as on-site inspection or expert review) stops it at the end of the pause
day; resuming restarts it at the end of the resume day, and the working days in between are
added to the limit. Clocks change only through commands: from BPMN scripts (`sla_pause()`),
the API or the CLI.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.runtime.deadlines import ClockAction
from engine.runtime.workcalendar import WorkCalendar
from engine.store.models import SlaClock


class ClockError(ValueError):
    """A clock action that does not fit the clock's state (pausing a paused clock, ...)."""


def _recompute(row: SlaClock, calendar: WorkCalendar) -> None:
    deadline = calendar.add_workdays(row.started_on, row.workdays + row.paused_workdays)
    row.due_date = deadline.day
    row.provisional_year = deadline.provisional_year


def apply(
    session: Session, instance_id: str, action: ClockAction, calendar: WorkCalendar, now: datetime
) -> SlaClock:
    today = calendar.today(now)
    row = session.scalars(
        select(SlaClock).where(SlaClock.instance_id == instance_id, SlaClock.name == action.name)
    ).first()
    if action.action == "start":
        if action.workdays is None or action.workdays < 0:
            raise ClockError(f"clock {action.name!r} needs a number of working days")
        if row is None:
            row = SlaClock(instance_id=instance_id, name=action.name, paused_workdays=0)
            session.add(row)
        row.workdays, row.started_on, row.paused_workdays = action.workdays, today, 0
        row.paused_since, row.state, row.stopped_on, row.reason = None, "running", None, ""
    elif row is None:
        raise ClockError(f"this case has no clock {action.name!r}; start it first")
    elif action.action == "pause":
        if row.state != "running":
            raise ClockError(f"clock {action.name!r} is {row.state}, it cannot pause")
        row.state, row.paused_since, row.reason = "paused", today, action.reason
    elif action.action == "resume":
        if row.state != "paused" or row.paused_since is None:
            raise ClockError(f"clock {action.name!r} is {row.state}, it cannot resume")
        paused, _ = calendar.workdays_between(row.paused_since, today)
        row.paused_workdays += paused
        row.state, row.paused_since = "running", None
    elif action.action == "extend":
        if row.state == "stopped" or not action.workdays or action.workdays < 1:
            raise ClockError(f"clock {action.name!r} cannot be extended ({row.state})")
        row.workdays += action.workdays
    elif action.action == "stop":
        if row.state == "stopped":
            raise ClockError(f"clock {action.name!r} is already stopped")
        row.state, row.stopped_on, row.paused_since = "stopped", today, None
    else:
        raise ClockError(f"unknown clock action {action.action!r}")
    _recompute(row, calendar)
    row.updated_at = now
    session.flush()
    return row


def recompute(row: SlaClock, calendar: WorkCalendar) -> None:
    _recompute(row, calendar)


def to_dict(row: SlaClock, calendar: WorkCalendar, now: datetime) -> dict[str, Any]:
    today = calendar.today(now)
    due_at = calendar.end_of_workday(row.due_date)
    running = row.state == "running"
    overdue = running and now > due_at
    soon_limit = calendar.add_workdays(today, 1).day
    remaining, _ = (
        calendar.workdays_between(today, row.due_date) if row.due_date > today else (0, None)
    )
    return {
        "name": row.name,
        "state": row.state,
        "workdays": row.workdays,
        "started_on": row.started_on.isoformat(),
        "paused_since": row.paused_since.isoformat() if row.paused_since else None,
        "paused_workdays": row.paused_workdays,
        "due_date": row.due_date.isoformat(),
        "due_at": due_at.isoformat(),
        "remaining_workdays": remaining if running else None,
        "overdue": overdue,
        "due_soon": running and not overdue and row.due_date <= soon_limit,
        "provisional_year": row.provisional_year,
        "reason": row.reason or None,
    }


def overdue_filter(calendar: WorkCalendar, now: datetime, soon: bool = False) -> Any:
    """SQL condition on SlaClock: running and past its closing time on the due date, or (with
    `soon`) not yet overdue but due within one working day."""
    today = calendar.today(now)
    closed_today = now > datetime.combine(today, calendar.office.closes, calendar.office.tz)
    running = SlaClock.state == "running"
    if soon:
        first = today + timedelta(days=1) if closed_today else today
        return (
            running
            & (SlaClock.due_date >= first)
            & (SlaClock.due_date <= calendar.add_workdays(today, 1).day)
        )
    return running & ((SlaClock.due_date <= today) if closed_today else (SlaClock.due_date < today))
