"""Evaluating a user task's assignment attributes when the task becomes ready.

Attributes are literals, `${expression}`, or text with expressions inside it, which Camunda
calls a composite expression: `kermit_${loopCounter}` gives `kermit_0`, `kermit_1` ...
Due and follow-up dates may be an ISO date or date-time, an ISO duration counted from now
(`P3D`, `PT4H`), or an expression returning a date, datetime, timedelta or such a string.
A date alone means the end of that day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

from engine.bpmn import juel
from engine.runtime.sandbox import Sandbox, ScriptError

_EXPRESSION = re.compile(r"^\$\{(.*)\}$", re.DOTALL)
DEFAULT_PRIORITY = 50


@dataclass
class Assignment:
    candidate_groups: list[str] = field(default_factory=list)
    candidate_users: list[str] = field(default_factory=list)
    assignee: str | None = None
    form_key: str | None = None
    due_at: datetime | None = None
    follow_up_at: datetime | None = None
    priority: int = DEFAULT_PRIORITY
    problems: list[str] = field(default_factory=list)


def _value(raw: Any, data: dict[str, Any], sandbox: Sandbox) -> Any:
    if not isinstance(raw, str):
        return raw
    parts = juel.split_composite(raw.strip())
    if len(parts) == 1 and parts[0][0]:
        return sandbox.evaluate(juel.to_python(parts[0][1]), data)
    if not any(is_expression for is_expression, _ in parts):
        return raw
    out: list[str] = []
    for is_expression, text in parts:
        if not is_expression:
            out.append(text)
            continue
        value = sandbox.evaluate(juel.to_python(text), data)
        out.append("" if value is None else str(value))
    return "".join(out)


def _names(raws: list[str], data: dict[str, Any], sandbox: Sandbox) -> list[str]:
    names: list[str] = []
    for raw in raws:
        value = _value(raw, data, sandbox)
        if value is None:
            continue
        items = value if isinstance(value, list | tuple | set) else str(value).split(",")
        for item in items:
            text = str(item).strip()
            if text and text not in names:
                names.append(text)
    return names


def to_moment(value: Any, now: datetime, tz: ZoneInfo) -> datetime | None:
    """A due date from whatever the model gave: datetime, date, timedelta or ISO text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        return datetime.combine(value, time(23, 59, 59), tz)
    if isinstance(value, timedelta):
        return now + value
    if isinstance(value, str):
        text = value.strip()
        if text.upper().startswith("P"):
            parsed = TimerEventDefinition.parse_iso_duration(text)
            return now + TimerEventDefinition.get_timedelta_from_start(parsed, now)
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            return datetime.combine(date.fromisoformat(text), time(23, 59, 59), tz)
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    raise ValueError(f"cannot read {value!r} as a date")


def evaluate(
    raw: dict[str, Any], data: dict[str, Any], sandbox: Sandbox, now: datetime, tz: ZoneInfo
) -> Assignment:
    """Resolve every attribute; a failing one is left empty and reported in `problems`."""
    result = Assignment()
    steps: list[tuple[str, Any]] = [
        (
            "candidateGroups",
            lambda: setattr(
                result, "candidate_groups", _names(raw.get("candidate_groups") or [], data, sandbox)
            ),
        ),
        (
            "candidateUsers",
            lambda: setattr(
                result, "candidate_users", _names(raw.get("candidate_users") or [], data, sandbox)
            ),
        ),
        (
            "assignee",
            lambda: setattr(
                result, "assignee", _optional_text(_value(raw.get("assignee"), data, sandbox))
            ),
        ),
        (
            "formKey",
            lambda: setattr(
                result, "form_key", _optional_text(_value(raw.get("form_key"), data, sandbox))
            ),
        ),
        (
            "dueDate",
            lambda: setattr(
                result, "due_at", to_moment(_value(raw.get("due_date"), data, sandbox), now, tz)
            ),
        ),
        (
            "followUpDate",
            lambda: setattr(
                result,
                "follow_up_at",
                to_moment(_value(raw.get("follow_up_date"), data, sandbox), now, tz),
            ),
        ),
        (
            "priority",
            lambda: setattr(
                result, "priority", _priority(_value(raw.get("priority"), data, sandbox))
            ),
        ),
    ]
    for attribute, step in steps:
        try:
            step()
        except (ScriptError, ValueError, TypeError) as exc:
            result.problems.append(f"camunda:{attribute} could not be evaluated: {exc}")
    return result


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _priority(value: Any) -> int:
    if value is None or value == "":
        return DEFAULT_PRIORITY
    return int(value)
