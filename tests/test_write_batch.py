"""Writes sent together (engine/store/write_batch.py): the same outcome as one statement at a
time, on SQLite and on PostgreSQL; only the waiting is shared."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from engine.errors import VersionConflict
from engine.store import version_fence, write_batch
from engine.store.db import Database
from engine.store.models import AuditEvent, Department, Instance, Sequence
from tests import bpmn as b
from tests.conftest import _is_pg

COUNTERS = Sequence.__table__


def _add(session: Any, name: str, value: int) -> None:
    write_batch.write(session, insert(COUNTERS), {"name": name, "value": value})


def _move_case_counter(session: Any, seen: int) -> None:
    """Set the "case" counter to 6, fenced on it still being `seen` (as the runner fences on
    the instance's version)."""
    write_batch.write(
        session,
        update(COUNTERS).where(COUNTERS.c.name == "case", COUNTERS.c.value == seen).values(value=6),
        fence="case counter moved on",
    )


def _values(app: Any) -> dict[str, int]:
    with app.database.read_session() as session:
        return {row.name: row.value for row in session.execute(select(COUNTERS))}


def test_queued_writes_are_seen_by_the_next_read_and_kept_by_the_commit(app):
    with app.database.write_session() as session:
        _add(session, "certificate", 1)
        write_batch.write(
            session, update(COUNTERS).where(COUNTERS.c.name == "certificate").values(value=2)
        )
        read = session.scalar(select(COUNTERS.c.value).where(COUNTERS.c.name == "certificate"))
        assert read == 2
        _add(session, "tracking", 7)
    values = _values(app)
    assert (values["certificate"], values["tracking"]) == (2, 7)


def test_a_failed_fence_stops_the_transaction_and_keeps_none_of_its_writes(app):
    with app.database.write_session() as session:
        _add(session, "case", 5)
    with (
        pytest.raises(VersionConflict, match="case counter moved on"),
        app.database.write_session() as session,
    ):
        _add(session, "written before the fence", 1)
        _move_case_counter(session, seen=4)
        _add(session, "written after the fence", 1)
    values = _values(app)
    assert values["case"] == 5
    assert "written before the fence" not in values
    assert "written after the fence" not in values


def test_a_fence_that_holds_lets_the_transaction_commit(app):
    with app.database.write_session() as session:
        _add(session, "case", 5)
    with app.database.write_session() as session:
        _move_case_counter(session, seen=5)
    assert _values(app)["case"] == 6


def test_a_write_the_database_refuses_fails_the_transaction_with_its_reason(app):
    with app.database.write_session() as session:
        _add(session, "duplicate", 1)
    with pytest.raises(IntegrityError), app.database.write_session() as session:
        _add(session, "fresh", 1)
        _add(session, "duplicate", 2)
    values = _values(app)
    assert values["duplicate"] == 1
    assert "fresh" not in values


def test_writes_wait_for_each_other_on_postgresql_only(app):
    """PostgreSQL: nothing is sent until the commit, then all in one pipeline. SQLite (no
    network): each write runs when it is made."""
    postgresql = app.database.dialect == "postgresql"
    sent: list[bool] = []

    def seen(connection: Any, *_args: Any) -> None:
        driver = connection.connection.driver_connection
        sent.append(bool(driver.pgconn.pipeline_status) if postgresql else False)

    event.listen(app.database.engine, "before_cursor_execute", seen)
    try:
        with app.database.write_session() as session:
            session.connection()  # the transaction's own BEGIN is not a write
            sent.clear()
            for index in range(3):
                _add(session, f"serial {index}", index)
            assert len(sent) == (0 if postgresql else 3)
    finally:
        event.remove(app.database.engine, "before_cursor_execute", seen)
    assert sent == [postgresql] * 3
    assert {f"serial {i}" for i in range(3)} <= set(_values(app))


def test_commands_leave_no_write_queues_behind(app):
    """A queue lives as long as its connection: a long-running server must not keep one per
    command it ran (the first version did: the queue held its connection alive)."""
    postgresql = app.database.dialect == "postgresql"
    gc.collect()
    before = len(write_batch._queues)
    during: list[int] = []
    for index in range(50):
        with app.database.write_session() as session:
            _add(session, f"serial {index}", index)
            during.append(len(write_batch._queues))
    gc.collect()
    if postgresql:
        assert min(during) > before  # the writes were queued
    else:
        assert max(during) == before  # SQLite runs each write at once: nothing is queued
    assert len(write_batch._queues) <= before


def test_a_fence_the_server_checks_stops_the_commit_sent_with_it(app, gf, caplog):
    """The version fence (engine/store/version_fence.py): on PostgreSQL it fails in the server,
    in the same round trip as the COMMIT, which then does not happen; nothing is kept."""
    gf.deploy(
        b.doc(
            "one_step",
            b.start(),
            b.user("A", "受理", candidateGroups="center"),
            b.end(),
            *b.chain("start", "A", "end"),
        )
    )
    case = gf.start("one_step")
    seen = gf.instance(case.id).version
    with (
        pytest.raises(VersionConflict, match="moved on under the test"),
        app.database.write_session() as session,
    ):
        _add(session, "written before the fence", 1)
        version_fence.advance(
            session,
            Instance.__table__,
            case.id,
            seen - 1,
            {"status": "ended"},
            "moved on under the test",
        )
        _add(session, "written after the fence", 1)
    values = _values(app)
    assert "written before the fence" not in values and "written after the fence" not in values
    # a conflict is an ordinary outcome: the batch ends without the driver logging a warning
    assert not [r for r in caplog.records if r.name.startswith("psycopg")]
    assert (gf.instance(case.id).version, gf.instance(case.id).status) == (seen, case.status)
    updates = text(  # this backend's count, including its earlier transactions' unreported
        "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relid = 'instances'::regclass"
    )
    with app.database.write_session() as session:
        before = session.execute(updates).scalar_one() if _is_pg() else 0
        version_fence.advance(
            session, Instance.__table__, case.id, seen, {"business_key": "BK-7"}, "not expected"
        )
        if _is_pg():  # the fence and the changes are one UPDATE: one new version of the row
            write_batch.send(session)
            assert session.execute(updates).scalar_one() - before == 1
    assert (gf.instance(case.id).version, gf.instance(case.id).business_key) == (seen + 1, "BK-7")


# --- batched writes run on the driver directly (engine/store/driver_sql.py) ----------------

AUDIT = AuditEvent.__table__


def _audit_row(command: str) -> dict[str, Any]:
    return {
        "at": datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
        "actor": "li",
        "command": command,
        "instance_id": None,
        "task_id": None,
        "element_id": None,
        "data": None,  # a JSON column's None: JSON null, as SQLAlchemy writes it
        "details": {"材料": ["身份证", None], "份数": 2, "容缺": True},
    }


def _stored(app: Any, command: str) -> tuple[Any, ...]:
    with app.database.read_session() as session:
        row = session.execute(
            select(
                AUDIT.c.at,
                AUDIT.c.actor,
                AUDIT.c.data.is_(None),
                AUDIT.c.data,
                AUDIT.c.details,
            ).where(AUDIT.c.command == command)
        ).one()
    return tuple(row)


def test_a_batched_write_stores_what_the_same_statement_run_at_once_stores(app):
    """The batch may run a statement on the driver itself (PostgreSQL); what lands in the
    table must be what SQLAlchemy's own execute stores: JSON null for None, JSON with
    Chinese text, an aware timestamp, values bound in the statement itself."""
    statement = insert(AUDIT).inline()
    with app.database.write_session() as session:
        session.execute(statement, _audit_row("at once"))
    with app.database.write_session() as session:
        write_batch.write(session, statement, _audit_row("batched"))
    assert _stored(app, "batched") == _stored(app, "at once")
    assert _stored(app, "batched")[2:] == (False, None, _audit_row("x")["details"])
    # a value bound in the statement (not given with the run) is sent too
    with app.database.write_session() as session:
        _add(session, "bound", 1)
    with app.database.write_session() as session:
        write_batch.write(
            session,
            update(COUNTERS).where(COUNTERS.c.name == "bound").values(value=COUNTERS.c.value + 41),
        )
    assert _values(app)["bound"] == 42


def test_a_batched_insert_of_many_rows_stores_each_row_and_fences_on_all_of_them(app):
    rows = [{"name": f"window {n}", "value": n} for n in range(3)]
    with app.database.write_session() as session:
        write_batch.write(session, insert(COUNTERS), rows)
    assert {name: v for name, v in _values(app).items() if name.startswith("window")} == {
        "window 0": 0,
        "window 1": 1,
        "window 2": 2,
    }
    raise_all = update(COUNTERS).where(COUNTERS.c.name.like("window %")).values(value=9)
    with (
        pytest.raises(VersionConflict, match="three rows expected"),
        app.database.write_session() as session,
    ):
        write_batch.write(session, raise_all, fence="three rows expected")
    assert _values(app)["window 0"] == 0


def test_a_batched_insert_gets_the_columns_python_defaults(app):
    """A statement that needs Python-side column defaults goes through SQLAlchemy, which
    fills them in (a department row without created_at gets one)."""
    departments = Department.__table__
    with app.database.write_session() as session:
        write_batch.write(session, insert(departments), {"code": "batch-dept", "name": "窗口"})
    with app.database.read_session() as session:
        created = session.scalar(
            select(departments.c.created_at).where(departments.c.code == "batch-dept")
        )
    assert created is not None


def test_one_statement_written_to_two_kinds_of_database_in_one_process(app, tmp_path):
    """The driver's SQL is kept per dialect: a statement first written to this test's
    database, then to a SQLite file (a tool copying between them), then here again."""
    other = Database(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        COUNTERS.create(other.engine)
        statement = insert(COUNTERS)
        for database, name in ((app.database, "here"), (other, "there"), (app.database, "again")):
            with database.write_session() as session:
                write_batch.write(session, statement, [{"name": name, "value": 1}])
        with other.read_session() as session:
            assert session.scalars(select(COUNTERS.c.name)).all() == ["there"]
    finally:
        other.dispose()
    assert {"here", "again"} <= set(_values(app))
