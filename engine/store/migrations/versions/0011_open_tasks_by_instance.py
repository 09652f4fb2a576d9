"""partial index of open tasks by case, for the stuck detector's "waits on a person" test

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 15:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN = sa.text("state = 'open'")


def upgrade() -> None:
    op.create_index(
        "ix_human_tasks_open_instance",
        "human_tasks",
        ["instance_id"],
        postgresql_where=OPEN,
        sqlite_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_human_tasks_open_instance", table_name="human_tasks")
