"""Chinese working days: statutory holidays off, make-up working weekends on.

The calendar lives in the database (seeded from chinese-calendar for 2004-2026, editable and
importable by ops). A year the calendar does not know is counted with weekends only and the
result is marked *provisional* with that year, never raised and never silently trusted;
importing the year lets every provisional deadline be recomputed from its basis.

Counting follows 行政许可法 practice: the day a period starts on is not counted, so
5 working days after 2026-09-30 is 2026-10-13.
"""

from __future__ import annotations

import bisect
import json
import threading
import time as _time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from engine.errors import InvalidInput
from engine.store.db import Database
from engine.store.models import CalendarDay, CalendarYear, Sequence

VERSION_KEY = "calendar_version"


@dataclass(frozen=True)
class OfficeHours:
    opens: time = time(8, 30)
    closes: time = time(17, 30)
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))

    @classmethod
    def parse(cls, opens: str, closes: str, tz: str) -> OfficeHours:
        try:
            return cls(time.fromisoformat(opens), time.fromisoformat(closes), ZoneInfo(tz))
        except ValueError as exc:
            raise ValueError(f"office hours {opens}-{closes}: {exc}") from None


@dataclass(frozen=True)
class Deadline:
    """A date counted in working days, and the unknown years the count had to guess through."""

    day: date
    unknown_years: frozenset[int] = frozenset()

    @property
    def provisional(self) -> bool:
        return bool(self.unknown_years)

    @property
    def provisional_year(self) -> int | None:
        return min(self.unknown_years) if self.unknown_years else None


class WorkCalendar:
    """An immutable snapshot of the calendar: known years and their exception days."""

    def __init__(
        self, known_years: Iterable[int], exceptions: dict[date, bool], office: OfficeHours
    ) -> None:
        self.known_years = frozenset(known_years)
        self.exceptions = dict(exceptions)
        self.office = office
        self._exception_days = sorted(self.exceptions)

    def knows(self, year: int) -> bool:
        return year in self.known_years

    def is_workday(self, day: date) -> bool:
        """Whether `day` is a working day (weekends only, for a year the calendar lacks)."""
        if day in self.exceptions:
            return self.exceptions[day]
        return day.weekday() < 5

    def add_workdays(self, start: date, count: int) -> Deadline:
        """The `count`-th working day after `start` (start itself not counted)."""
        if count < 0:
            raise ValueError("a number of working days cannot be negative")
        day = start
        unknown: set[int] = set()
        remaining = count
        if count == 0:
            if not self.knows(day.year):
                unknown.add(day.year)
            return Deadline(day, frozenset(unknown))
        while remaining:
            day += timedelta(days=1)
            if not self.knows(day.year):
                unknown.add(day.year)
            if self.is_workday(day):
                remaining -= 1
        return Deadline(day, frozenset(unknown))

    def workdays_between(self, after: date, until: date) -> tuple[int, frozenset[int]]:
        """Working days d with after < d <= until, and the unknown years among them."""
        count = 0
        unknown: set[int] = set()
        day = after
        while day < until:
            day += timedelta(days=1)
            if not self.knows(day.year):
                unknown.add(day.year)
            if self.is_workday(day):
                count += 1
        return count, frozenset(unknown)

    def end_of_workday(self, day: date) -> datetime:
        """Closing time of `day`, or of the next working day when `day` is not one."""
        while not self.is_workday(day):
            day += timedelta(days=1)
        return datetime.combine(day, self.office.closes, self.office.tz)

    def _office_window(self, day: date) -> tuple[datetime, datetime]:
        tz = self.office.tz
        return (
            datetime.combine(day, self.office.opens, tz),
            datetime.combine(day, self.office.closes, tz),
        )

    @property
    def day_hours(self) -> float:
        opens, closes = self._office_window(date(2000, 1, 3))
        return (closes - opens).total_seconds() / 3600

    def add_workhours(self, start: datetime, hours: float) -> datetime:
        """The moment `hours` office hours after `start` (half a working day is
        `day_hours / 2`); time outside office hours and days off do not count."""
        remaining = timedelta(hours=hours)
        moment = start.astimezone(self.office.tz)
        day = moment.date()
        for _ in range(3660):
            if self.is_workday(day):
                opens, closes = self._office_window(day)
                begin = max(moment, opens)
                if begin < closes:
                    if begin + remaining <= closes:
                        return begin + remaining
                    remaining -= closes - begin
            day += timedelta(days=1)
            moment = datetime.combine(day, time(0), self.office.tz)
        raise ValueError(f"{hours} office hours run past ten years")

    def workhours_between(self, start: datetime, end: datetime) -> float:
        """Office hours between two moments, on working days only.

        The first and last day are measured against their office window; the whole days in
        between are counted, not walked (the stuck detector asks this for hundreds of cases
        idle for months)."""
        if end <= start:
            return 0.0
        first, last = start.astimezone(self.office.tz).date(), end.astimezone(self.office.tz).date()
        total = self._hours_on(first, start, end)
        if last > first:
            total += self._hours_on(last, start, end)
        if (last - first).days > 1:
            between = self.workday_count(first + timedelta(days=1), last - timedelta(days=1))
            total += between * self.day_hours
        return total

    def _hours_on(self, day: date, start: datetime, end: datetime) -> float:
        if not self.is_workday(day):
            return 0.0
        opens, closes = self._office_window(day)
        begin, finish = max(start, opens), min(end, closes)
        return (finish - begin).total_seconds() / 3600 if finish > begin else 0.0

    def workday_count(self, first: date, last: date) -> int:
        """Working days d with first <= d <= last: weekdays by arithmetic, then the exception
        days in the range (holidays on weekdays, make-up working weekends)."""
        if last < first:
            return 0
        weeks, rest = divmod((last - first).days + 1, 7)
        count = weeks * 5 + sum(1 for i in range(rest) if (first.weekday() + i) % 7 < 5)
        low = bisect.bisect_left(self._exception_days, first)
        high = bisect.bisect_right(self._exception_days, last)
        for day in self._exception_days[low:high]:
            count += int(self.exceptions[day]) - int(day.weekday() < 5)
        return count

    def today(self, now: datetime) -> date:
        return now.astimezone(self.office.tz).date()


# --- storage ---------------------------------------------------------------------------------


def seed_from_package(session: Session, first: int = 2004, last: int = 2026) -> int:
    """Load chinese-calendar's years into an empty calendar; returns how many years it added."""
    if session.scalars(select(CalendarYear.year).limit(1)).first() is not None:
        return 0
    from chinese_calendar import constants

    days: dict[date, tuple[bool, str]] = {}
    for day, name in constants.holidays.items():
        if first <= day.year <= last and day.weekday() < 5:
            days[day] = (False, str(getattr(name, "value", name)))
    for day, name in constants.workdays.items():
        if first <= day.year <= last:
            days[day] = (True, f"{getattr(name, 'value', name)} (调休上班)")
    for year in range(first, last + 1):
        session.add(CalendarYear(year=year, source="chinese-calendar"))
    for day, (is_workday, name) in sorted(days.items()):
        session.add(
            CalendarDay(day=day, is_workday=is_workday, name=name, source="chinese-calendar")
        )
    _bump(session)
    session.flush()
    return last - first + 1


def _bump(session: Session) -> None:
    row = session.get(Sequence, VERSION_KEY)
    if row is None:
        session.add(Sequence(name=VERSION_KEY, value=1))
    else:
        row.value += 1


@dataclass
class YearFile:
    year: int
    holidays: list[tuple[date, str]]
    workdays: list[tuple[date, str]]


def parse_year(raw: Any, where: str = "$") -> YearFile:
    """A year as ops write it:
    {"year": 2027, "holidays": [{"date": "2027-01-01", "name": "元旦"}],
     "workdays": [{"date": "2027-02-07", "name": "春节调休"}]}.
    Holidays are days off (weekdays in a holiday span); workdays are make-up working days."""
    if not isinstance(raw, dict):
        raise InvalidInput(
            "a calendar year must be a JSON object", [{"path": where, "message": "not an object"}]
        )
    year = raw.get("year")
    if not isinstance(year, int) or not 1900 < year < 2200:
        raise InvalidInput(
            "calendar year is missing or not a year",
            [{"path": f"{where}.year", "message": "must be a year"}],
        )
    parsed: dict[str, list[tuple[date, str]]] = {}
    seen: dict[date, str] = {}
    for kind in ("holidays", "workdays"):
        entries = raw.get(kind, [])
        if not isinstance(entries, list):
            raise InvalidInput(
                f"{kind} must be a list", [{"path": f"{where}.{kind}", "message": "not a list"}]
            )
        parsed[kind] = []
        for index, entry in enumerate(entries):
            path = f"{where}.{kind}[{index}]"
            text = entry.get("date") if isinstance(entry, dict) else entry
            name = entry.get("name", "") if isinstance(entry, dict) else ""
            try:
                day = date.fromisoformat(str(text))
            except ValueError:
                raise InvalidInput(
                    f"{text!r} is not a date (YYYY-MM-DD)",
                    [{"path": f"{path}.date", "message": "not a date"}],
                ) from None
            if day.year != year:
                raise InvalidInput(
                    f"{day} is not in {year}",
                    [{"path": f"{path}.date", "message": f"not in {year}"}],
                )
            if day in seen:
                raise InvalidInput(
                    f"{day} is listed twice",
                    [{"path": f"{path}.date", "message": f"also in {seen[day]}"}],
                )
            seen[day] = kind
            parsed[kind].append((day, str(name)))
    return YearFile(year, parsed["holidays"], parsed["workdays"])


def read_year_file(path: Path) -> YearFile:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from None
    return parse_year(raw)


def store_year(session: Session, year_file: YearFile, source: str) -> None:
    """Replace what the calendar says about one year."""
    start, end = date(year_file.year, 1, 1), date(year_file.year, 12, 31)
    session.execute(delete(CalendarDay).where(CalendarDay.day >= start, CalendarDay.day <= end))
    row = session.get(CalendarYear, year_file.year)
    if row is None:
        session.add(CalendarYear(year=year_file.year, source=source))
    else:
        row.source = source
    for day, name in year_file.holidays:
        session.add(CalendarDay(day=day, is_workday=False, name=name or "节假日", source=source))
    for day, name in year_file.workdays:
        session.add(CalendarDay(day=day, is_workday=True, name=name or "调休上班", source=source))
    _bump(session)
    session.flush()


def set_day(session: Session, day: date, is_workday: bool, name: str, source: str = "edit") -> None:
    """Change one day (an extra day off, a moved make-up day)."""
    row = session.get(CalendarDay, day)
    if row is None:
        session.add(CalendarDay(day=day, is_workday=is_workday, name=name, source=source))
    else:
        row.is_workday, row.name, row.source = is_workday, name, source
    _bump(session)
    session.flush()


def year_days(session: Session, year: int) -> dict[str, Any]:
    start, end = date(year, 1, 1), date(year, 12, 31)
    rows = list(
        session.scalars(
            select(CalendarDay)
            .where(CalendarDay.day >= start, CalendarDay.day <= end)
            .order_by(CalendarDay.day)
        )
    )
    known = session.get(CalendarYear, year)
    return {
        "year": year,
        "known": known is not None,
        "source": known.source if known else None,
        "holidays": [{"date": r.day.isoformat(), "name": r.name} for r in rows if not r.is_workday],
        "workdays": [{"date": r.day.isoformat(), "name": r.name} for r in rows if r.is_workday],
    }


class WeekdayCalendars:
    """Every year known, weekends off, no holidays: for checking expressions (lint), where no
    database calendar is at hand and only the shape of a result matters."""

    def __init__(self) -> None:
        self._calendar = WorkCalendar(range(1900, 2200), {}, OfficeHours())

    def get(self) -> WorkCalendar:
        return self._calendar


class CalendarProvider:
    """The current calendar for one process, reloaded when the stored version changes."""

    def __init__(self, database: Database, office: OfficeHours, recheck_s: float = 10.0) -> None:
        self.database = database
        self.office = office
        self.recheck_s = recheck_s
        self._lock = threading.Lock()
        self._calendar: WorkCalendar | None = None
        self._version: int | None = None
        self._checked = 0.0

    def invalidate(self) -> None:
        with self._lock:
            self._checked = 0.0
            self._version = None

    def get(self) -> WorkCalendar:
        with self._lock:
            fresh = _time.monotonic() - self._checked < self.recheck_s
            if self._calendar is not None and fresh:
                return self._calendar
            with self.database.read_session() as session:
                row = session.get(Sequence, VERSION_KEY)
                version = row.value if row else 0
                if self._calendar is None or version != self._version:
                    years = list(session.scalars(select(CalendarYear.year)))
                    days = {d.day: d.is_workday for d in session.scalars(select(CalendarDay))}
                    self._calendar = WorkCalendar(years, days, self.office)
                    self._version = version
            self._checked = _time.monotonic()
            return self._calendar
