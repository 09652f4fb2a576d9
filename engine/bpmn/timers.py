"""Timer definitions as modelers write them, turned into the Python expressions Spiff evaluates.

Camunda Modeler writes literals (`PT2H`, `2026-10-01T09:00:00+08:00`, `R3/PT1H`) or `${...}`
expressions; SpiffWorkflow evaluates every timer text as a Python expression and wants ISO text
back. A literal is quoted; `${expr}` and any other text are taken as Python and wrapped in
`timer_text(...)`, which turns a datetime (`${workdays(3)}`) or timedelta into ISO 8601.
"""

from __future__ import annotations

import re

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
    if is_literal(stripped):
        return repr(stripped)
    return f"timer_text({stripped})"


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
