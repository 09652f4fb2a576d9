"""Timer definitions as modelers write them, turned into the Python expressions Spiff evaluates.

Camunda Modeler writes literals (`PT2H`, `2026-10-01T09:00:00+08:00`, `R3/PT1H`) or `${...}`
expressions; SpiffWorkflow evaluates every timer text as a Python expression and wants ISO text
back. A literal is quoted; `${expr}` and any other text are taken as Python and wrapped in
`timer_text(...)`, which turns a datetime (`${workdays(3)}`) or timedelta into ISO 8601.
A Quartz cron `timeCycle` (`0 0/5 * * * ?`, as Camunda reads it) that fires at a fixed period
becomes `cron_cycle(...)`: the cycle from its next firing, `R/<next>/PT5M`.
"""

from __future__ import annotations

import ast
import itertools
import re
from datetime import datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

_DURATION = re.compile(
    r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_CYCLE = re.compile(r"^R\d*/")
_EXPRESSION = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
_LOOKS_LITERAL = re.compile(r"^(P\d|PT\d|P\.|R\d*/|\d{4}-\d)", re.IGNORECASE)

KINDS = ("timeDate", "timeDuration", "timeCycle")


def looks_literal(text: str) -> bool:
    """Written like an ISO 8601 literal (maybe a wrong one) rather than an expression."""
    return bool(_LOOKS_LITERAL.match(text.strip()))


def is_literal(text: str) -> bool:
    text = text.strip()
    return bool(_DURATION.match(text) or _DATE.match(text) or _CYCLE.match(text))


def to_python_expression(text: str | None) -> str | None:
    """Return the Python expression Spiff should evaluate for a timer text."""
    if text is None:
        return None
    stripped = text.strip()
    wrapped = _EXPRESSION.match(stripped)
    if wrapped:
        return f"timer_text({wrapped.group(1).strip()})"
    if is_quartz_cron(stripped):
        return f"cron_cycle({stripped!r})"
    if is_literal(stripped):
        return repr(stripped)
    return f"timer_text({stripped})"


def quartz_cron_of(expression: str | None) -> QuartzCron | None:
    """The Quartz cron behind an expression `to_python_expression` wrote for one, else None
    (the scheduler reads a start timer's cron itself: it fires at each time, regular or not)."""
    match = re.fullmatch(r"\s*cron_cycle\((.*)\)\s*", expression or "")
    if match is None:
        return None
    try:
        text = ast.literal_eval(match.group(1))
    except (ValueError, SyntaxError):
        return None
    return QuartzCron(text) if isinstance(text, str) and is_quartz_cron(text) else None


def literal_problem(text: str, kind: str) -> str | None:
    """Why a literal timer text is wrong for its kind; None if fine or not a literal."""
    stripped = text.strip()
    if not is_literal(stripped) and not looks_literal(stripped):
        return None
    try:
        if kind == "timeDuration":
            if not _DURATION.match(stripped):
                return f"timeDuration {stripped!r} is not an ISO 8601 duration such as PT2H or P3D"
            TimerEventDefinition.parse_iso_duration(stripped)
        elif kind == "timeDate":
            if not _DATE.match(stripped):
                return f"timeDate {stripped!r} is not an ISO 8601 date-time"
            TimerEventDefinition.get_datetime(stripped)
        elif kind == "timeCycle":
            if not _CYCLE.match(stripped):
                return (
                    f"timeCycle {stripped!r} is not an ISO 8601 repeating interval such as R3/PT1H"
                )
            TimerEventDefinition.parse_iso_recurring_interval(stripped)
    except Exception as exc:
        return f"{kind} {stripped!r} cannot be read: {exc}"
    return None


# --- Quartz cron (Camunda's timeCycle alternative) ----------------------------------------------

_CRON_FIELDS = (
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 1, 7),
    ("year", 1970, 2199),
)
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
_DAYS = {d: i + 1 for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_CRON_TOKEN = re.compile(r"^[0-9A-Za-z*?/,#\-]+$")
_CRON_START = re.compile(
    r"^([0-9*?]|(JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT|L))",
    re.I,
)


def is_quartz_cron(text: str | None) -> bool:
    """Six or seven fields, as Camunda's Quartz-style `timeCycle` (`0 0/5 * * * ?`)."""
    fields = (text or "").split()
    return (
        len(fields) in (6, 7)
        and all(_CRON_TOKEN.match(f) and _CRON_START.match(f) for f in fields)
        and bool(re.match(r"^[0-9*/,\-]+$", fields[0]))
    )


def _cron_values(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    values: set[int] = set()
    for part in field.upper().split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
            if step < 1:
                raise ValueError(f"step {step} in {field!r}")
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = int(names.get(a, a)), int(names.get(b, b))
        else:
            first = int(names.get(part, part))
            last = high if step > 1 or "/" in field else first
        if not (low <= first <= high and low <= last <= high) or first > last:
            raise ValueError(f"{field!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return values


class QuartzCron:
    """A Quartz cron expression (seconds minutes hours day-of-month month day-of-week [year])
    with numbers, names, `*`, `?`, ranges, lists and steps; `L`, `W` and `#` are not read."""

    def __init__(self, text: str) -> None:
        fields = text.split()
        if not is_quartz_cron(text):
            raise ValueError(f"{text!r} is not a Quartz cron expression (6 or 7 fields)")
        if len(fields) == 6:
            fields.append("*")
        self.text = text
        self.any_day = fields[3] in ("*", "?")
        self.any_weekday = fields[5] in ("*", "?")
        try:
            self.sets = [
                _cron_values(f, low, high, _MONTHS if i == 4 else _DAYS if i == 5 else {})
                for i, (f, (_name, low, high)) in enumerate(zip(fields, _CRON_FIELDS, strict=True))
            ]
        except ValueError as exc:
            raise ValueError(f"Quartz cron {text!r} cannot be read: {exc}") from exc

    def period(self) -> timedelta:
        """The fixed interval between firings; ValueError when the firings are irregular
        (a Spiff cycle timer repeats one interval)."""
        full = [set(range(low, high + 1)) for _name, low, high in _CRON_FIELDS]
        units = (timedelta(seconds=1), timedelta(minutes=1), timedelta(hours=1))
        days_any = self.sets[3] == full[3] or self.any_day
        weekdays_any = self.sets[5] == full[5] or self.any_weekday
        coarse_any = days_any and weekdays_any and self.sets[4] == full[4]
        coarse_any = coarse_any and self.sets[6] == full[6]
        if coarse_any:
            for index in range(3):
                values = sorted(self.sets[index])
                finer_fixed = all(len(self.sets[i]) == 1 for i in range(index))
                coarser_full = all(self.sets[i] == full[i] for i in range(index + 1, 3))
                if not (finer_fixed and coarser_full) or len(values) == 1:
                    continue
                step = values[1] - values[0]
                size = len(full[index])
                regular = all(b - a == step for a, b in itertools.pairwise(values))
                if regular and size % step == 0 and len(values) == size // step:
                    return units[index] * step
            if all(len(self.sets[i]) == 1 for i in range(3)):
                return timedelta(days=1)
        raise ValueError(
            f"Quartz cron {self.text!r} fires at irregular times; a timeCycle repeats one "
            "interval: use a cron that fires every N seconds, minutes or hours, or daily, or "
            "an ISO 8601 cycle such as R/PT1H"
        )

    def _day_matches(self, moment: datetime) -> bool:
        weekday = (moment.isoweekday() % 7) + 1  # Quartz: 1 = Sunday
        day_ok = moment.day in self.sets[3]
        weekday_ok = weekday in self.sets[5]
        if self.any_day and not self.any_weekday:
            return weekday_ok
        if self.any_weekday and not self.any_day:
            return day_ok
        return day_ok and weekday_ok

    def next_after(self, moment: datetime) -> datetime:
        """The first firing strictly after `moment` (in `moment`'s time zone)."""
        t = moment.replace(microsecond=0) + timedelta(seconds=1)
        limit = moment + timedelta(days=366 * 5)
        while t <= limit:
            if t.year not in self.sets[6] or t.month not in self.sets[4]:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(
                    day=1
                )
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.sets[2]:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.sets[1]:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.sets[0]:
                t += timedelta(seconds=1)
            else:
                return t
        raise ValueError(f"Quartz cron {self.text!r} never fires")


def cron_cycle(text: str, now: datetime) -> str:
    """The ISO 8601 cycle a fixed-period Quartz cron stands for, from its next firing after
    `now` (evaluated in the server's local time zone, as Camunda does)."""
    cron = QuartzCron(text)
    period = cron.period()
    local = now.astimezone()
    start = cron.next_after(local)
    return f"R/{start.isoformat()}/{_iso_period(period)}"


def _iso_period(period: timedelta) -> str:
    seconds = int(period.total_seconds())
    if seconds % 86400 == 0:
        return f"P{seconds // 86400}D"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return (
        "PT"
        + (f"{hours}H" if hours else "")
        + (f"{minutes}M" if minutes else "")
        + (f"{secs}S" if secs else "")
    )
