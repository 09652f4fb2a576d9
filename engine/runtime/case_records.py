"""Per-case facts for per-item figures: which catalogue item a case serves, its promised
moment, and when and how it concluded (办结 = status 11, 12 or 13)."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.runtime.workcalendar import WorkCalendar
from engine.store.models import CaseRecord, CatalogItem

CONCLUDED = {11: "passed", 12: "passed_rongque", 13: "not_passed"}


def apply(
    session: Session,
    instance_id: str,
    items: list[tuple[str, datetime | None]],
    statuses: list[int],
    calendar: WorkCalendar,
    now: datetime,
) -> None:
    row = session.get(CaseRecord, instance_id)
    for code, due in items:
        if row is None:
            item = session.get(CatalogItem, code)
            row = CaseRecord(
                instance_id=instance_id,
                item_code=code,
                item_kind=item.kind if item is not None else "item",
                started_at=now,
            )
            session.add(row)
        row.item_code = code
        if due is not None:
            row.due_at = due
    concluded = [c for c in statuses if c in CONCLUDED]
    if row is not None and concluded:
        row.outcome = CONCLUDED[concluded[-1]]
        row.concluded_at = now
        row.on_time = row.due_at is None or now <= row.due_at
        row.duration_workdays = round(
            calendar.workhours_between(row.started_at, now) / calendar.day_hours, 3
        )
    session.flush()


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1], 3)


def figures(session: Session, kind: str | None = None) -> list[dict[str, Any]]:
    """Per item: volume, concluded, duration in working days (median, p90), on-time rate."""
    query = select(CaseRecord)
    if kind:
        query = query.where(CaseRecord.item_kind == kind)
    names = dict(session.execute(select(CatalogItem.code, CatalogItem.name)).all())
    groups: dict[str, list[CaseRecord]] = {}
    for row in session.scalars(query):
        groups.setdefault(row.item_code, []).append(row)
    result = []
    for code in sorted(groups):
        rows = groups[code]
        done = [r for r in rows if r.concluded_at is not None]
        durations = sorted(r.duration_workdays or 0.0 for r in done)
        on_time = sum(1 for r in done if r.on_time)
        result.append(
            {
                "item_code": code,
                "name": names.get(code, ""),
                "kind": rows[0].item_kind,
                "volume": len(rows),
                "concluded": len(done),
                "open": len(rows) - len(done),
                "median_workdays": round(statistics.median(durations), 3) if durations else None,
                "p90_workdays": _percentile(durations, 0.9),
                "on_time_rate": round(on_time / len(done), 4) if done else None,
            }
        )
    return result
