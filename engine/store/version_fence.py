"""The version fence of a command: move the instance from the version the command read to the
next, with the command's changes, or fail with `VersionConflict` and change nothing.

On SQLite it is one `UPDATE ... WHERE id = :id AND version = :seen` whose row count is checked
at once. On PostgreSQL the check runs in the server (`govflow_advance_version`, migration
0012): a fence that fails aborts the transaction by itself, so the command's last writes and
its COMMIT can be sent in one round trip (`write_batch.send(session, commit=True)`), with no
wait for a row count in between.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from engine.store import prepared, write_batch

ADVANCE = "SELECT govflow_advance_version(%s, %s, %s)"
FAILED = "GF409"  # the SQLSTATE govflow_advance_version raises


def advance(
    session: Session, instances: Table, case_id: str, seen: int, values: dict[str, Any], fence: str
) -> None:
    """Queue the fenced move of `case_id` from version `seen`, with `values` (not `version`)."""
    if session.get_bind().dialect.name != "postgresql":
        write_batch.write(
            session,
            *prepared.update_where(
                instances, {"id": case_id, "version": seen}, {**values, "version": seen + 1}
            ),
            fence=fence,
        )
        return
    write_batch.call(session, ADVANCE, (case_id, seen, fence), failure=(FAILED, fence))
    if values:
        write_batch.write(session, *prepared.update_where(instances, {"id": case_id}, values))
