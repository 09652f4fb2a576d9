"""working-day calendar, SLA clocks and timer deadlines

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 09:30:00.949093
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("is_workday", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )
    op.create_table(
        "sla_clocks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("workdays", sa.Integer(), nullable=False),
        sa.Column("started_on", sa.Date(), nullable=False),
        sa.Column("paused_since", sa.Date(), nullable=True),
        sa.Column("paused_workdays", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("provisional_year", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=400), nullable=False),
        sa.Column("stopped_on", sa.Date(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["instances.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id", "name", name="uq_sla_clocks_instance_name"),
    )
    with op.batch_alter_table("sla_clocks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sla_clocks_provisional_year"), ["provisional_year"], unique=False
        )
        batch_op.create_index("ix_sla_clocks_state_due", ["state", "due_date"], unique=False)

    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("due_basis", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("due_provisional_year", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_human_tasks_due_provisional_year"),
            ["due_provisional_year"],
            unique=False,
        )

    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("definition_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("basis", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("provisional_year", sa.Integer(), nullable=True))
        batch_op.alter_column("instance_id", existing_type=sa.VARCHAR(length=36), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_timers_definition_version_id"), ["definition_version_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_timers_provisional_year"), ["provisional_year"], unique=False
        )
        batch_op.create_foreign_key(
            "fk_timers_definition_version", "definition_versions", ["definition_version_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("timers", schema=None) as batch_op:
        batch_op.drop_constraint("fk_timers_definition_version", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_timers_provisional_year"))
        batch_op.drop_index(batch_op.f("ix_timers_definition_version_id"))
        batch_op.alter_column("instance_id", existing_type=sa.VARCHAR(length=36), nullable=False)
        batch_op.drop_column("provisional_year")
        batch_op.drop_column("basis")
        batch_op.drop_column("definition_version_id")

    with op.batch_alter_table("human_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_human_tasks_due_provisional_year"))
        batch_op.drop_column("due_provisional_year")
        batch_op.drop_column("due_basis")

    with op.batch_alter_table("sla_clocks", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_clocks_state_due")
        batch_op.drop_index(batch_op.f("ix_sla_clocks_provisional_year"))

    op.drop_table("sla_clocks")
    op.drop_table("calendar_years")
    op.drop_table("calendar_days")
