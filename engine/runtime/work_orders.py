"""Rectification work orders (整改工单): what a case's scripts record about the problem it
carries, kept as one row per case for the problem list (问题清单) and its figures.

Scripts call `work_order(...)`; the runner applies the collected fields after the engine
steps and clock actions of the same command, so `on_time` can compare the answer day with the
`resolve` clock the same script just stopped.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.runtime.workcalendar import WorkCalendar
from engine.store.models import Instance, SlaClock, WorkOrder
from engine.store.sequences import next_value

SOURCES = ("window", "rating", "survey", "ledger", "walkthrough", "hotline", "other")
CATEGORIES = ("业务办理", "事项公开", "服务态度", "设施与环境", "其他")
DIFFICULTIES = ("general", "difficult")
STATUSES = (
    "registered",
    "dispatched",
    "returned",
    "contacted",
    "extension_requested",
    "reviewing",
    "answered",
    "closed",
    "reopened",
)
RESOLVE_CLOCK = "resolve"
CONTACT_CLOCK = "contact"

_TEXT_FIELDS = ("window", "department", "description", "contact", "origin_case")


def check_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields a script may set, checked so a typo fails the script, not the list."""
    allowed = {
        "source",
        "category",
        "difficulty",
        "status",
        "reported_on",
        "escalated",
        "returned",
        "reopened",
        "extension_workdays",
        "satisfied",
        *_TEXT_FIELDS,
    }
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"work_order() has no field(s) {', '.join(unknown)}")
    choices = {"source": SOURCES, "category": CATEGORIES, "difficulty": DIFFICULTIES}
    for key, values in (*choices.items(), ("status", STATUSES)):
        if key in fields and fields[key] not in values:
            raise ValueError(f"work_order({key}={fields[key]!r}): must be one of {values}")
    if "reported_on" in fields:
        fields["reported_on"] = date.fromisoformat(str(fields["reported_on"])[:10]).isoformat()
    if "extension_workdays" in fields:
        fields["extension_workdays"] = int(fields["extension_workdays"])
    return fields


def new_number(session: Session, today: date) -> str:
    """`ZG<yyyymmdd><4-digit serial of the day>` (整改 work order)."""
    day = today.strftime("%Y%m%d")
    return f"ZG{day}{next_value(session, f'work_order:{day}'):04d}"


def apply(
    session: Session,
    instance: Instance,
    updates: list[dict[str, Any]],
    calendar: WorkCalendar,
    now: datetime,
    number: str | None = None,
) -> WorkOrder:
    """Create the case's work order on its first update, then apply each update in order."""
    today = calendar.today(now)
    row = session.get(WorkOrder, instance.id)
    if row is None:
        row = WorkOrder(
            instance_id=instance.id,
            number=number or instance.business_key or new_number(session, today),
            source="other",
            window="",
            description="",
            contact="",
            reported_on=today,
            status="registered",
            escalated=False,
            returns=0,
            reopened=0,
            extension_workdays=0,
            created_at=now,
        )
        session.add(row)
    for fields in updates:
        for key in ("source", "category", "difficulty", *_TEXT_FIELDS):
            if key in fields and fields[key] is not None:
                setattr(row, key, str(fields[key])[:4000])
        if "reported_on" in fields:
            row.reported_on = date.fromisoformat(fields["reported_on"])
        if fields.get("escalated"):
            row.escalated = True
        if fields.get("returned"):
            row.returns += 1
        if fields.get("reopened"):
            row.reopened += 1
            row.answered_on, row.on_time, row.satisfied, row.closed_on = None, None, None, None
        if "extension_workdays" in fields:
            row.extension_workdays += fields["extension_workdays"]
        if "satisfied" in fields:
            row.satisfied = bool(fields["satisfied"])
        status = fields.get("status")
        if status:
            row.status = status
            if status == "answered":
                row.answered_on = today
                row.on_time = _answered_in_time(session, instance.id, today)
            elif status == "closed":
                row.closed_on = today
    row.updated_at = now
    session.flush()
    return row


def _answered_in_time(session: Session, instance_id: str, today: date) -> bool | None:
    clock = session.scalars(
        select(SlaClock).where(SlaClock.instance_id == instance_id, SlaClock.name == RESOLVE_CLOCK)
    ).first()
    return None if clock is None else today <= clock.due_date
