"""A refused command's transaction on PostgreSQL (engine/store/read_only_end.py): when it wrote
nothing it ends with COMMIT and the connection keeps its prepared statements; when it wrote,
it is rolled back as always, and writes it only queued are never sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text

from engine.app import Govflow
from engine.config import Settings
from engine.errors import Conflict
from engine.store import write_batch
from engine.store.db import Database
from engine.store.models import Sequence
from tests.conftest import _is_pg
from tests.support import GovflowHarness
from tests.test_faults import TWO_STEP

COUNTERS = Sequence.__table__
PREPARED = text("SELECT count(*) FROM pg_prepared_statements")


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if not _is_pg():
        pytest.skip("prepared statements and their loss on rollback are psycopg's")


@pytest.fixture
def one_connection(settings: Settings, tmp_path: Path) -> Iterator[GovflowHarness]:
    """An application whose pool holds one connection, so every command uses the same one."""
    database = Database(settings.database_url, pool_size=1, max_overflow=0)
    harness = GovflowHarness(Govflow(settings, database), tmp_path)
    yield harness
    harness.app.dispose()


def _prepared(database: Database) -> int:
    with database.read_session() as session:
        return int(session.scalar(PREPARED) or 0)


def _values(database: Database) -> dict[str, int]:
    with database.read_session() as session:
        return {row.name: row.value for row in session.execute(select(COUNTERS))}


def test_refused_commands_leave_the_connection_its_prepared_statements(one_connection):
    gf = one_connection
    gf.deploy(TWO_STEP)
    li, wang = gf.clerk("li", "center"), gf.clerk("wang", "center")
    for _ in range(3):  # every statement of a case's commands runs more than five times
        case = gf.start("two_step")
        gf.complete(gf.task(case.id, "A").id, li)
        gf.complete(gf.task(case.id, "B").id, li)
    prepared = _prepared(gf.app.database)
    assert prepared >= 5
    case = gf.start("two_step")
    task = gf.task(case.id, "A")
    gf.claim(task.id, li)
    with pytest.raises(Conflict, match="already claimed by li"):
        gf.claim(task.id, wang)
    with pytest.raises(Conflict, match="is claimed by li"):
        gf.complete(task.id, wang)
    assert _prepared(gf.app.database) >= prepared
    assert gf.task(case.id, "A").assignee == "li"  # the refusals changed nothing


def test_a_failed_transaction_that_wrote_is_rolled_back(app):
    with pytest.raises(RuntimeError, match="refused after writing"), app.database.session() as s:
        s.execute(insert(COUNTERS).values(name="written then refused", value=1))
        raise RuntimeError("refused after writing")
    assert "written then refused" not in _values(app.database)


def test_writes_a_refused_command_only_queued_are_never_sent(app):
    with (
        pytest.raises(RuntimeError, match="refused before sending"),
        app.database.write_session() as session,
    ):
        session.execute(select(COUNTERS.c.value)).all()  # the transaction has begun
        write_batch.write(session, insert(COUNTERS), {"name": "queued then refused", "value": 1})
        raise RuntimeError("refused before sending")
    assert "queued then refused" not in _values(app.database)
    with app.database.write_session() as session:  # the connection works on
        write_batch.write(session, insert(COUNTERS), {"name": "next command", "value": 2})
    assert _values(app.database)["next command"] == 2


def test_a_transaction_the_server_failed_is_rolled_back_and_the_connection_works_on(app):
    with app.database.session() as session:
        session.execute(insert(COUNTERS).values(name="taken", value=1))
    with pytest.raises(Exception, match="duplicate key"), app.database.session() as session:
        session.execute(insert(COUNTERS).values(name="taken", value=2))
    with app.database.session() as session:
        session.execute(insert(COUNTERS).values(name="after the failure", value=3))
    values = _values(app.database)
    assert (values["taken"], values["after the failure"]) == (1, 3)
