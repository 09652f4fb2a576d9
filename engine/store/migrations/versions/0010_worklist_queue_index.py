"""worklist order copied into task_candidates; index for the newest-instances page

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_candidates") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("priority", sa.Integer(), nullable=False, server_default="50"))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE task_candidates SET "
        "due_at = (SELECT h.due_at FROM human_tasks h WHERE h.id = task_candidates.task_id), "
        "priority = COALESCE((SELECT h.priority FROM human_tasks h "
        "WHERE h.id = task_candidates.task_id), 50), "
        "created_at = (SELECT h.created_at FROM human_tasks h WHERE h.id = task_candidates.task_id)"
    )
    op.drop_index("ix_task_candidates_lookup", table_name="task_candidates")
    op.create_index(
        "ix_task_candidates_queue",
        "task_candidates",
        ["kind", "value", "due_at", sa.text("priority DESC"), "created_at"],
    )
    op.create_index(
        "ix_instances_started", "instances", [sa.text("started_at DESC"), sa.text("id DESC")]
    )


def downgrade() -> None:
    op.drop_index("ix_instances_started", table_name="instances")
    op.drop_index("ix_task_candidates_queue", table_name="task_candidates")
    op.create_index("ix_task_candidates_lookup", "task_candidates", ["kind", "value"])
    with op.batch_alter_table("task_candidates") as batch:
        batch.drop_column("created_at")
        batch.drop_column("priority")
        batch.drop_column("due_at")
