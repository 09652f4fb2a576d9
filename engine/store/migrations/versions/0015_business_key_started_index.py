"""instances: the business-key index also holds the newest-first order of a search's page

A business-key search asks for the matching cases newest first. With the key alone in its
index, PostgreSQL without statistics walked every case newest first looking for the key
(3.4 s at 1M cases); with the order in the same index, the matching cases come from one
short walk whatever the statistics.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_instances_business_key_started",
        "instances",
        ["business_key", sa.text("started_at DESC"), sa.text("id DESC")],
    )
    op.drop_index("ix_instances_business_key", table_name="instances")


def downgrade() -> None:
    op.create_index("ix_instances_business_key", "instances", ["business_key"])
    op.drop_index("ix_instances_business_key_started", table_name="instances")
