"""Working-day helpers for scripts, conditions, timers and task attributes.

`workdays(n)`, `workdays_from(day, n)`, `is_workday(day)`, `end_of_workday(day)` count on the
stored calendar; `sla_start/pause/resume/stop` drive a case's clocks from BPMN. While a
command runs, a *notes* scope collects what the helpers did: which unknown years a count went
through (making the result provisional), the basis of each count (so it can be recomputed once
the year is imported), and the clock actions to apply after the engine steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from engine.runtime import clock
from engine.runtime.workcalendar import CalendarProvider, WorkCalendar


@dataclass(frozen=True)
class ClockAction:
    action: str  # start, pause, resume, stop
    name: str
    workdays: int | None = None
    reason: str = ""


@dataclass
class Notes:
    """What helpers did during one command (or one evaluation inside it)."""

    unknown_years: set[int] = field(default_factory=set)
    bases: list[dict[str, Any]] = field(default_factory=list)
    clock_actions: list[ClockAction] = field(default_factory=list)
    statuses: list[tuple[int, str]] = field(default_factory=list)
    business_key: str | None = None
    work_orders: list[dict[str, Any]] = field(default_factory=list)
    case_items: list[tuple[str, datetime | None]] = field(default_factory=list)
    work_order_number: str | None = None
    session: Any = None

    @property
    def provisional_year(self) -> int | None:
        return min(self.unknown_years) if self.unknown_years else None

    @property
    def single_basis(self) -> dict[str, Any] | None:
        return self.bases[0] if len(self.bases) == 1 else None


_notes: ContextVar[Notes | None] = ContextVar("govflow_deadline_notes", default=None)


@contextmanager
def collecting() -> Iterator[Notes]:
    """Collect notes of helper calls; clock actions also reach an enclosing scope."""
    outer = _notes.get()
    notes = Notes(session=outer.session if outer is not None else None)
    token = _notes.set(notes)
    try:
        yield notes
    finally:
        _notes.reset(token)
        if outer is not None:
            outer.unknown_years.update(notes.unknown_years)
            outer.clock_actions.extend(notes.clock_actions)
            outer.statuses.extend(notes.statuses)
            outer.business_key = notes.business_key or outer.business_key
            outer.work_orders.extend(notes.work_orders)
            outer.case_items.extend(notes.case_items)
            outer.work_order_number = notes.work_order_number or outer.work_order_number


def current() -> Notes | None:
    return _notes.get()


def _note_years(years: frozenset[int] | set[int]) -> None:
    notes = _notes.get()
    if notes is not None:
        notes.unknown_years.update(years)


def _note_basis(basis: dict[str, Any]) -> None:
    notes = _notes.get()
    if notes is not None:
        notes.bases.append(basis)


def _day(value: Any, calendar: WorkCalendar) -> date:
    if isinstance(value, datetime):
        return value.astimezone(calendar.office.tz).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return date.fromisoformat(text[:10]) if len(text) > 10 else date.fromisoformat(text)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a date")


def iso_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 0:
        raise ValueError("a timer duration cannot be negative")
    return f"PT{seconds}S"


def timer_text(value: Any) -> str:
    """What a timer expression evaluated to, as the ISO 8601 text Spiff's timers read."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time()).isoformat()
    if isinstance(value, timedelta):
        return iso_duration(value)
    return str(value)


def recompute(basis: dict[str, Any], calendar: WorkCalendar) -> tuple[datetime, int | None]:
    """A deadline again from its basis (after a year was imported): the moment and the
    provisional year still left (None when the calendar now knows every year it crosses)."""
    start = date.fromisoformat(basis["start"])
    deadline = calendar.add_workdays(start, int(basis["workdays"]))
    return calendar.end_of_workday(deadline.day), deadline.provisional_year


class DeadlineHelpers:
    """The functions put into every script's and expression's namespace."""

    def __init__(self, calendars: CalendarProvider) -> None:
        self.calendars = calendars

    def namespace(self) -> dict[str, Any]:
        return {
            "today": self.today,
            "workdays": self.workdays,
            "workhours": self.workhours,
            "workdays_from": self.workdays_from,
            "workdays_between": self.workdays_between,
            "is_workday": self.is_workday,
            "end_of_workday": self.end_of_workday,
            "timer_text": timer_text,
            "sla_start": self.sla_start,
            "sla_pause": self.sla_pause,
            "sla_resume": self.sla_resume,
            "sla_stop": self.sla_stop,
            "sla_extend": self.sla_extend,
        }

    def today(self) -> date:
        """Today in the office's time zone (the UTC date is wrong before 08:00 in Beijing)."""
        return self.calendars.get().today(clock.now())

    def workdays_from(self, day: Any, count: int) -> datetime:
        """Closing time of the `count`-th working day after `day`."""
        calendar = self.calendars.get()
        start = _day(day, calendar)
        deadline = calendar.add_workdays(start, int(count))
        _note_years(deadline.unknown_years)
        _note_basis({"start": start.isoformat(), "workdays": int(count)})
        return calendar.end_of_workday(deadline.day)

    def workdays(self, count: float) -> datetime:
        """Closing time of the `count`-th working day after today; a fraction (0.5, the 企业开办
        promise) counts office hours from now instead."""
        calendar = self.calendars.get()
        if float(count) != int(count):
            now = clock.now()
            due = calendar.add_workhours(now, float(count) * calendar.day_hours)
            local = due.astimezone(calendar.office.tz)
            _note_years({y for y in range(now.year, local.year + 1) if not calendar.knows(y)})
            return local
        return self.workdays_from(calendar.today(clock.now()), int(count))

    def workhours(self, hours: float) -> datetime:
        """The moment `hours` office hours from now (即办 and same-day promises)."""
        calendar = self.calendars.get()
        return calendar.add_workhours(clock.now(), float(hours)).astimezone(calendar.office.tz)

    def workdays_between(self, after: Any, until: Any) -> int:
        """Working days after `after` up to and including `until`: how long a pause lasted,
        counted the way a paused clock counts it."""
        calendar = self.calendars.get()
        count, unknown = calendar.workdays_between(_day(after, calendar), _day(until, calendar))
        _note_years(unknown)
        return count

    def is_workday(self, day: Any) -> bool:
        calendar = self.calendars.get()
        value = _day(day, calendar)
        if not calendar.knows(value.year):
            _note_years({value.year})
        return calendar.is_workday(value)

    def end_of_workday(self, day: Any) -> datetime:
        calendar = self.calendars.get()
        value = _day(day, calendar)
        if not calendar.knows(value.year):
            _note_years({value.year})
        return calendar.end_of_workday(value)

    @staticmethod
    def _act(action: ClockAction) -> None:
        notes = _notes.get()
        if notes is None:
            raise RuntimeError("case clocks can only be changed while a case runs")
        notes.clock_actions.append(action)

    def sla_start(self, workdays: int, name: str = "case") -> None:
        """Start (or restart) the clock `name` for `workdays` working days from today."""
        self._act(ClockAction("start", str(name), int(workdays)))

    def sla_pause(self, name: str = "case", reason: str = "") -> None:
        self._act(ClockAction("pause", str(name), reason=str(reason)))

    def sla_resume(self, name: str = "case") -> None:
        self._act(ClockAction("resume", str(name)))

    def sla_stop(self, name: str = "case") -> None:
        self._act(ClockAction("stop", str(name)))

    def sla_extend(self, workdays: int, name: str = "case") -> None:
        """Add `workdays` to the clock's limit (an approved extension, 延期)."""
        self._act(ClockAction("extend", str(name), int(workdays)))
