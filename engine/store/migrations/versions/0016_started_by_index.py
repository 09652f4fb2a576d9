"""instances: the cases a clerk started, newest first, in one index

A clerk's case list shows the cases they started beside those with their tasks. For a clerk
who sees few of the newest cases, the list reads them from the clerk's own rows; without an
index on the starter, the cases they started were found by walking every case newest first
(engine/runtime/queries.py, `_clerk_newest`).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 21:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_instances_started_by",
        "instances",
        ["started_by", sa.text("started_at DESC"), sa.text("id DESC")],
    )


def downgrade() -> None:
    op.drop_index("ix_instances_started_by", table_name="instances")
