"""task_candidates.claimed and a partial index of the unclaimed entries, for claim-next

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 04:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_candidates") as batch:
        batch.add_column(
            sa.Column("claimed", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE task_candidates SET claimed = "
        + ("true" if op.get_bind().dialect.name == "postgresql" else "1")
        + " WHERE task_id IN (SELECT id FROM human_tasks WHERE assignee IS NOT NULL)"
    )
    op.create_index(
        "ix_task_candidates_unclaimed",
        "task_candidates",
        ["kind", "value", "due_at", sa.text("priority DESC"), "created_at"],
        postgresql_where=sa.text("claimed = false"),
        sqlite_where=sa.text("claimed = 0"),
    )


def downgrade() -> None:
    op.drop_index("ix_task_candidates_unclaimed", table_name="task_candidates")
    with op.batch_alter_table("task_candidates") as batch:
        batch.drop_column("claimed")
