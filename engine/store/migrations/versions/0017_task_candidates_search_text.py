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
            # the extension may live in a schema not on the search path: name its class there
            schema = bind.exec_driver_sql(
                "SELECT n.nspname FROM pg_extension e "
                "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
            ).scalar_one()
            ops = f"{bind.dialect.identifier_preparer.quote_identifier(schema)}.gin_trgm_ops"
            op.create_index(
                "ix_task_candidates_text",
                "task_candidates",
                ["name", "business_key"],
                postgresql_using="gin",
                postgresql_ops={"name": ops, "business_key": ops},
            )
    except DBAPIError as exc:
        log.warning(
            "the trigram index ix_task_candidates_text was not made (%s); a search of the "
            "worklist reads the clerk's queue rows without it. To have it, create the "
            "extension pg_trgm (as a superuser) and the index by hand, as in this migration.",
            str(exc.orig).strip(),
        )


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_task_candidates_text")
    # a plain DROP COLUMN (SQLite 3.35+): a copy of the table would make its indexes anew
    # without their DESC columns
    with op.batch_alter_table("task_candidates", recreate="never") as batch:
        batch.drop_column("business_key")
        batch.drop_column("name")
