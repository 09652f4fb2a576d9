"""The problem list (问题清单) of rectification work orders, its figures and its exports.

Rates follow the center's reporting: rectification rate = closed / all; on-time rate = answered
by the (possibly extended) deadline / answered; satisfaction = satisfied at follow-up /
followed up. Overdue is live: the `resolve` clock is running past its closing time.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.accounts.actor import Actor
from engine.errors import InvalidInput
from engine.runtime import clocks
from engine.runtime.work_orders import CONTACT_CLOCK, RESOLVE_CLOCK
from engine.runtime.workcalendar import WorkCalendar
from engine.store.models import SlaClock, WorkOrder

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
GROUPS = ("department", "window", "category", "status", "source", "difficulty")
SEE_ALL_DEPARTMENTS = frozenset({"center", "leading"})

COLUMNS: list[tuple[str, str]] = [
    ("number", "工单号"),
    ("source", "来源"),
    ("window", "窗口"),
    ("department", "责任部门"),
    ("category", "问题类别"),
    ("difficulty", "问题类型"),
    ("description", "问题描述"),
    ("contact", "联系方式"),
    ("reported_on", "反映日期"),
    ("origin_case", "相关办件号"),
    ("status", "状态"),
    ("due_date", "答复期限"),
    ("overdue", "超期"),
    ("escalated", "已督办"),
    ("returns", "退回次数"),
    ("extension_workdays", "延期工作日"),
    ("answered_on", "答复日期"),
    ("on_time", "按期答复"),
    ("satisfied", "回访满意"),
    ("reopened", "重办次数"),
    ("closed_on", "办结日期"),
]


@dataclass(frozen=True)
class Filters:
    department: str | None = None
    window: str | None = None
    category: str | None = None
    status: str | None = None
    source: str | None = None
    reported_from: date | None = None
    reported_to: date | None = None
    overdue: bool | None = None


def visible_departments(actor: Actor) -> frozenset[str] | None:
    """None means every department: ops, admins and the center's own staff see the whole list;
    a department's clerks see the orders dispatched to them."""
    if actor.has_role("ops", "admin") or actor.departments & SEE_ALL_DEPARTMENTS:
        return None
    return actor.departments


def _query(filters: Filters, departments: frozenset[str] | None) -> Any:
    query = select(WorkOrder)
    if departments is not None:
        query = query.where(WorkOrder.department.in_(sorted(departments)))
    for name in ("department", "window", "category", "status", "source"):
        value = getattr(filters, name)
        if value:
            query = query.where(getattr(WorkOrder, name) == value)
    if filters.reported_from:
        query = query.where(WorkOrder.reported_on >= filters.reported_from)
    if filters.reported_to:
        query = query.where(WorkOrder.reported_on <= filters.reported_to)
    return query


def _clocks(session: Session, instance_ids: list[str]) -> dict[tuple[str, str], SlaClock]:
    found: dict[tuple[str, str], SlaClock] = {}
    for start in range(0, len(instance_ids), 500):
        rows = session.scalars(
            select(SlaClock).where(
                SlaClock.instance_id.in_(instance_ids[start : start + 500]),
                SlaClock.name.in_((RESOLVE_CLOCK, CONTACT_CLOCK)),
            )
        )
        found.update({(r.instance_id, r.name): r for r in rows})
    return found


def _row(
    order: WorkOrder,
    found: dict[tuple[str, str], SlaClock],
    calendar: WorkCalendar,
    now: datetime,
) -> dict[str, Any]:
    resolve = found.get((order.instance_id, RESOLVE_CLOCK))
    contact = found.get((order.instance_id, CONTACT_CLOCK))
    resolve_state = clocks.to_dict(resolve, calendar, now) if resolve else None
    contact_state = clocks.to_dict(contact, calendar, now) if contact else None
    return {
        "instance_id": order.instance_id,
        "number": order.number,
        "source": order.source,
        "window": order.window,
        "department": order.department,
        "category": order.category,
        "difficulty": order.difficulty,
        "description": order.description,
        "contact": order.contact,
        "reported_on": order.reported_on.isoformat(),
        "origin_case": order.origin_case,
        "status": order.status,
        "due_date": resolve_state["due_date"] if resolve_state else None,
        "overdue": bool(resolve_state and resolve_state["overdue"]),
        "contact_overdue": bool(contact_state and contact_state["overdue"]),
        "escalated": order.escalated,
        "returns": order.returns,
        "extension_workdays": order.extension_workdays,
        "answered_on": order.answered_on.isoformat() if order.answered_on else None,
        "on_time": order.on_time,
        "satisfied": order.satisfied,
        "reopened": order.reopened,
        "closed_on": order.closed_on.isoformat() if order.closed_on else None,
    }


def list_orders(
    session: Session,
    actor: Actor,
    filters: Filters,
    calendar: WorkCalendar,
    now: datetime,
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """A page of the problem list, newest first, and how many match in all."""
    query = _query(filters, visible_departments(actor))
    orders = list(session.scalars(query.order_by(WorkOrder.created_at.desc(), WorkOrder.number)))
    found = _clocks(session, [o.instance_id for o in orders])
    rows = [_row(o, found, calendar, now) for o in orders]
    if filters.overdue is not None:
        rows = [r for r in rows if r["overdue"] == filters.overdue]
    return rows[offset : offset + limit], len(rows)


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def figures(
    session: Session,
    actor: Actor,
    by: str,
    filters: Filters,
    calendar: WorkCalendar,
    now: datetime,
) -> list[dict[str, Any]]:
    """Counts and rates per group (department, window, category, status, source)."""
    if by not in GROUPS:
        raise InvalidInput(
            f"cannot group by {by!r}", [{"path": "by", "message": f"one of {', '.join(GROUPS)}"}]
        )
    rows, _ = list_orders(session, actor, filters, calendar, now, limit=10**9)
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row[by] or ""), []).append(row)
    result = []
    for key in sorted(groups):
        members = groups[key]
        total = len(members)
        closed = sum(1 for r in members if r["status"] == "closed")
        answered = [r for r in members if r["on_time"] is not None]
        on_time = sum(1 for r in answered if r["on_time"])
        followed = [r for r in members if r["satisfied"] is not None]
        satisfied = sum(1 for r in followed if r["satisfied"])
        result.append(
            {
                by: key,
                "total": total,
                "closed": closed,
                "open": total - closed,
                "overdue": sum(1 for r in members if r["overdue"]),
                "escalated": sum(1 for r in members if r["escalated"]),
                "answered": len(answered),
                "on_time": on_time,
                "satisfied": satisfied,
                "followed_up": len(followed),
                "rectification_rate": _rate(closed, total),
                "on_time_rate": _rate(on_time, len(answered)),
                "satisfaction_rate": _rate(satisfied, len(followed)),
            }
        )
    return result


def count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(WorkOrder)) or 0)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # never let a spreadsheet run text from the public as a formula
    return value


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """UTF-8 with a byte-order mark, so Excel opens the Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([title for _, title in COLUMNS])
    for row in rows:
        writer.writerow([_cell(row[key]) for key, _ in COLUMNS])
    return buffer.getvalue().encode("utf-8-sig")


def to_xlsx(rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet("问题清单")
    sheet.append([title for _, title in COLUMNS])
    for row in rows:
        sheet.append([_cell(row[key]) for key, _ in COLUMNS])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
