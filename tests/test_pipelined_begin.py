"""Transactions on a PostgreSQL driver in autocommit mode whose BEGIN goes with the first
statement (engine/store/pipelined_begin.py): they stay transactions (all or nothing, isolated
until committed), and a connection asked for autocommit runs without one."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select, text

from engine.store.models import Sequence
from tests.conftest import _is_pg

COUNTERS = Sequence.__table__


def _names(app) -> set[str]:
    with app.database.read_session() as session:
        return set(session.scalars(select(COUNTERS.c.name)))


def test_a_transaction_that_fails_keeps_none_of_its_statements(app):
    with pytest.raises(RuntimeError), app.database.session() as session:
        session.execute(insert(COUNTERS), {"name": "first statement", "value": 1})
        session.execute(insert(COUNTERS), {"name": "second statement", "value": 1})
        raise RuntimeError("the command failed after its writes")
    assert not {"first statement", "second statement"} & _names(app)


def test_a_transaction_is_not_seen_by_others_until_it_commits(app):
    with app.database.session() as session:
        session.execute(insert(COUNTERS), {"name": "pending", "value": 1})
        assert "pending" not in _names(app)
    assert "pending" in _names(app)


def test_a_transaction_that_starts_with_a_bulk_write_is_one_transaction(app):
    rows = [{"name": f"bulk {n}", "value": n} for n in range(3)]
    with pytest.raises(RuntimeError), app.database.session() as session:
        session.execute(insert(COUNTERS), rows)
        raise RuntimeError("failed")
    assert not {r["name"] for r in rows} & _names(app)


def test_a_connection_asked_for_autocommit_runs_outside_a_transaction(app):
    if not _is_pg():
        pytest.skip("VACUUM outside a transaction block is PostgreSQL's rule")
    with app.database.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        connection.execute(text("VACUUM sequences"))  # refused inside a transaction block


def test_a_transaction_may_start_with_a_streamed_read_or_several_statements(app):
    """Server-side cursors and several statements in one string have no place in a pipeline:
    those first statements get their BEGIN on its own, and still run in the transaction."""
    if _is_pg():  # sqlite3 runs one statement per call
        with pytest.raises(RuntimeError), app.database.session() as session:
            connection = session.connection().execution_options(no_parameters=True)
            connection.exec_driver_sql(
                "INSERT INTO sequences (name, value) VALUES ('multi 1', 1); "
                "INSERT INTO sequences (name, value) VALUES ('multi 2', 2)"
            )
            raise RuntimeError("failed")
        assert not {"multi 1", "multi 2"} & _names(app)
    with app.database.session() as session:
        session.execute(insert(COUNTERS), {"name": "streamed", "value": 1})
    with app.database.read_session() as session:
        streamed = session.connection().execution_options(stream_results=True, max_row_buffer=2)
        names = {row.name for row in streamed.execute(select(COUNTERS.c.name))}
    assert "streamed" in names
