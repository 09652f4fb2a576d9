"""task_candidates: the task's name and business key, for a search of a clerk's queues

A clerk's search (`GET /api/tasks?q=`) looked for the text in every task row ever written,
3M at the scale of docs/performance.md (0.3-0.5 s), as a LIKE '%...%' can use no B-tree
index. The queue rows now carry the two searched columns, so a search reads the clerk's
queues only; on PostgreSQL a trigram index (pg_trgm) finds the matches without reading
even those. The extension ships with PostgreSQL's contrib and is trusted (PostgreSQL 13+:
a database owner may create it); where it cannot be created, the index is left out, with a
warning, and the search still works from the queue rows.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 23:50:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.exc import DBAPIError

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    with op.batch_alter_table("task_candidates") as batch:
        batch.add_column(sa.Column("name", sa.String(400), nullable=True))
        batch.add_column(sa.Column("business_key", sa.String(200), nullable=True))
    op.execute(
        "UPDATE task_candidates SET "
        "name = (SELECT h.name FROM human_tasks h WHERE h.id = task_candidates.task_id), "
        "business_key = (SELECT h.business_key FROM human_tasks h "
        "WHERE h.id = task_candidates.task_id)"
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DBAPIError as exc:
        log.warning(
            "pg_trgm could not be created (%s); a search of the worklist reads the clerk's "
            "queues without the trigram index ix_task_candidates_text. Create the extension "
            "(CREATE EXTENSION pg_trgm, as a superuser) and the index by hand to have it.",
            str(exc.orig).strip(),
        )
        return
    op.create_index(
        "ix_task_candidates_text",
        "task_candidates",
        ["name", "business_key"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops", "business_key": "gin_trgm_ops"},
    )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_task_candidates_text")
    with op.batch_alter_table("task_candidates") as batch:
        batch.drop_column("business_key")
        batch.drop_column("name")
