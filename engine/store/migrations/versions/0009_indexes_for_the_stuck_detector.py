"""partial indexes for the stuck detector at scale

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("status IN ('running', 'waiting')")
UNCLAIMED = sa.text("state = 'open' AND assignee IS NULL")
OPEN = sa.text("resolved_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_instances_live_updated",
        "instances",
        ["updated_at"],
        postgresql_where=LIVE,
        sqlite_where=LIVE,
    )
    op.create_index(
        "ix_human_tasks_unclaimed_due",
        "human_tasks",
        ["due_at"],
        postgresql_where=UNCLAIMED,
        sqlite_where=UNCLAIMED,
    )
    op.create_index(
        "ix_incidents_open", "incidents", ["created_at"], postgresql_where=OPEN, sqlite_where=OPEN
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_open", table_name="incidents")
    op.drop_index("ix_human_tasks_unclaimed_due", table_name="human_tasks")
    op.drop_index("ix_instances_live_updated", table_name="instances")
