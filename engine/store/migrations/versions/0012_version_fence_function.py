"""PostgreSQL: govflow_advance_version, the version fence checked in the server

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 00:45:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A command's fence fails in the server, so that the command's last writes and its COMMIT can
# go in one round trip: a failed fence aborts the transaction before the COMMIT runs
# (engine/store/version_fence.py). SQLSTATE GF409 tells it from every other error.
CREATE = """
CREATE OR REPLACE FUNCTION govflow_advance_version(case_id text, seen integer, message text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    UPDATE instances SET version = seen + 1 WHERE id = case_id AND version = seen;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = 'GF409', MESSAGE = message;
    END IF;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS govflow_advance_version(text, integer, text)")
