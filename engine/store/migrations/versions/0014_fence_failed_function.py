"""PostgreSQL: govflow_fence_failed, so a command's fence and its changes are one UPDATE

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 20:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The fenced UPDATE of an instance runs in a statement that calls this when it changed no row
# (engine/store/version_fence.py): the same GF409 as govflow_advance_version, which is kept
# for servers still running the previous version during an upgrade.
CREATE = """
CREATE OR REPLACE FUNCTION govflow_fence_failed(message text)
RETURNS void LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'GF409', MESSAGE = message;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS govflow_fence_failed(text)")
