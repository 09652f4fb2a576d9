"""The version fence of a command: move the instance from the version the command read to the
next, with the command's changes, or fail with `VersionConflict` and change nothing.

It is one `UPDATE ... WHERE id = :id AND version = :seen`. On SQLite its row count is checked
at once. On PostgreSQL the check runs in the server: the UPDATE is a CTE of a statement that
calls `govflow_fence_failed` (migration 0014) when it changed no row. A fence that fails thus
aborts the transaction by itself, so the command's last writes and its COMMIT can be sent in
one round trip (`write_batch.send(session, commit=True)`), with no wait for a row count in
between; and the instance row gets one new version per command, not two.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Select, Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from engine.store import prepared, write_batch

FAILED = "GF409"  # the SQLSTATE govflow_fence_failed raises


def advance(
    session: Session, instances: Table, case_id: str, seen: int, values: dict[str, Any], fence: str
) -> None:
    """Queue the fenced move of `case_id` from version `seen`, with `values` (not `version`)."""
    moved = {**values, "version": seen + 1}
    if session.get_bind().dialect.name != "postgresql":
        write_batch.write(
            session,
            *prepared.update_where(instances, {"id": case_id, "version": seen}, moved),
            fence=fence,
        )
        return
    bound = {f"new_{name}": value for name, value in moved.items()}
    bound.update(old_id=case_id, old_version=seen, fence_message=fence)
    write_batch.write(
        session, _fenced_move(instances, frozenset(moved)), bound, failure=(FAILED, fence)
    )


@cache
def _fenced_move(instances: Table, columns: frozenset[str]) -> Select[Any]:
    """WITH moved AS (UPDATE ... WHERE id AND version RETURNING id) SELECT
    govflow_fence_failed(:message) WHERE NOT EXISTS (SELECT FROM moved), built once per set of
    columns."""
    moved = (
        update(instances)
        .where(
            instances.c.id == bindparam("old_id"),
            instances.c.version == bindparam("old_version"),
        )
        .values({name: bindparam(f"new_{name}") for name in sorted(columns)})
        .returning(instances.c.id)
        .cte("moved")
    )
    return select(func.govflow_fence_failed(bindparam("fence_message"))).where(
        ~select(moved.c.id).exists()
    )
