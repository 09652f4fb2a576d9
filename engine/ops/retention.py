"""Retention: an ended case's live document leaves the instances table after N days.

The document is what a running case needs; once a case has ended, its history, tasks,
figures and the audit log answer every question, so the document is compressed into
`archived_documents` (kept, never read by the engine) and the live row shrinks to nothing.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from engine.runtime.runner import ENDED
from engine.store.db import Database
from engine.store.models import ArchivedDocument, AuditEvent, Instance


@dataclass
class PurgeReport:
    days: int
    cutoff: datetime
    archived: int
    bytes_before: int
    bytes_after: int
    dry_run: bool

    def to_dict(self) -> dict[str, object]:
        return {
            "days": self.days,
            "cutoff": self.cutoff.isoformat(),
            "archived": self.archived,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "dry_run": self.dry_run,
        }


def purge(
    database: Database,
    now: datetime,
    days: int,
    dry_run: bool = False,
    actor: str = "system",
    batch: int = 200,
) -> PurgeReport:
    """Archive the documents of cases that ended more than `days` days ago, in batches of
    one transaction each (an interrupted purge leaves every case either live or archived)."""
    if days < 0:
        raise ValueError("retention days must be zero or more")
    cutoff = now - timedelta(days=days)
    report = PurgeReport(days, cutoff, 0, 0, 0, dry_run)
    last_id = ""
    while True:
        with database.write_session() as session:
            rows = list(
                session.scalars(
                    select(Instance)
                    .where(
                        Instance.status.in_(ENDED),
                        Instance.ended_at < cutoff,
                        Instance.archived_at.is_(None),
                        Instance.id > last_id,
                    )
                    .order_by(Instance.id)
                    .limit(batch)
                )
            )
            if not rows:
                if not dry_run:
                    session.add(
                        AuditEvent(at=now, actor=actor, command="purge", data=report.to_dict())
                    )
                return report
            last_id = rows[-1].id
            for row in rows:
                raw = (row.document or "").encode()
                packed = zlib.compress(raw, 6)
                report.archived += 1
                report.bytes_before += len(raw)
                report.bytes_after += len(packed)
                if dry_run:
                    continue
                session.add(
                    ArchivedDocument(
                        instance_id=row.id,
                        document=packed,
                        original_bytes=len(raw),
                        archived_at=now,
                    )
                )
                session.execute(
                    update(Instance)
                    .where(Instance.id == row.id, Instance.archived_at.is_(None))
                    .values(document="", archived_at=now)
                    .execution_options(synchronize_session=False)
                )


def archived_document(database: Database, instance_id: str) -> str | None:
    """The archived document of a case, decompressed (for ops looking into an old case)."""
    with database.read_session() as session:
        row = session.get(ArchivedDocument, instance_id)
        return zlib.decompress(row.document).decode() if row is not None else None
