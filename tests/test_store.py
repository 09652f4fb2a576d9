"""The database: migrations, the append-only audit log, and schema checks."""

from __future__ import annotations

import logging

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from engine.app import Govflow
from engine.cli import main
from engine.runtime import queries
from engine.store import schema
from tests import bpmn as b


def test_a_fresh_database_is_created_at_the_current_revision(app):
    assert schema.current_revision(app.database) == schema.head_revision() == schema.HEAD


def test_a_database_made_by_an_older_version_is_reported_then_upgraded_with_its_data(settings):
    app = Govflow(settings)
    try:
        with app.database.session() as session:
            from engine.accounts import directory

            directory.add_department(session, "notary", "公证处")
        with app.database.engine.begin() as connection:
            config = schema.alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0001")
        assert schema.current_revision(app.database) == "0001"
        result = CliRunner().invoke(main, ["--db", settings.database_url, "departments", "list"])
        assert result.exit_code == 1
        assert "run `govflow db upgrade`" in result.stderr
        result = CliRunner().invoke(main, ["--db", settings.database_url, "db", "upgrade"])
        assert result.exit_code == 0, result.output
        assert result.stdout.strip() == f"database at revision {schema.head_revision()}"
        assert schema.is_current(app.database)
        result = CliRunner().invoke(main, ["--db", settings.database_url, "departments", "list"])
        assert "notary\t公证处" in result.stdout
    finally:
        schema.upgrade(app.database)
        app.dispose()


def test_the_audit_log_cannot_be_changed_or_deleted(gf, app):
    gf.deploy(
        '<?xml version="1.0"?><bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" '
        'id="d" targetNamespace="x"><bpmn:process id="p" isExecutable="true"><bpmn:startEvent id="s"/>'
        '<bpmn:endEvent id="e"/><bpmn:sequenceFlow id="f" sourceRef="s" targetRef="e"/></bpmn:process>'
        "</bpmn:definitions>"
    )
    for statement in ("UPDATE audit_events SET actor = 'someone else'", "DELETE FROM audit_events"):
        with pytest.raises(DBAPIError, match="append-only"), app.database.session() as session:
            session.execute(text(statement))
    assert gf.audit_count() == 1


def test_the_database_runs_the_way_the_runner_expects(app):
    """SQLite in WAL mode (readers never wait for the writer); PostgreSQL in READ COMMITTED,
    where the version fence re-checks the row a concurrent command just changed."""
    with app.database.engine.connect() as connection:
        if app.database.dialect == "sqlite":
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        else:
            assert (
                connection.exec_driver_sql("SHOW transaction_isolation").scalar()
                == "read committed"
            )


def test_open_tasks_keep_their_worklist_order_across_the_0010_upgrade(gf, app):
    """0010 copies each open task's sort keys into its candidate rows; a queue made before
    it must come out of the upgrade in the same order."""
    gf.deploy(
        b.doc(
            "queued",
            b.start(),
            b.user(
                "work", "办理", candidateGroups="amr", dueDate="${now() + timedelta(days=days)}"
            ),
            b.end(),
            *b.chain("start", "work", "end"),
        )
    )
    clerk = gf.clerk("li", "amr")
    started = {days: gf.start("queued", days=days).id for days in (6, 4, 2, 5, 1, 3)}
    with app.database.engine.begin() as connection:
        config = schema.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    schema.upgrade(app.database)
    with app.database.session() as session:
        first_two = queries.list_tasks(session, clerk, "group", limit=2)
    assert [t.instance_id for t in first_two] == [started[1], started[2]]


# one task in amr's queue, named so that a search by name can find it
NAMED = b.doc(
    "named",
    b.start(),
    b.user("work", "核验材料", candidateGroups="amr"),
    b.end(),
    *b.chain("start", "work", "end"),
)


def test_open_tasks_are_found_by_a_search_across_the_0017_upgrade(gf, app):
    """0017 copies each open task's name and business key into its candidate rows, which a
    search of the worklist reads; a task opened before it must be found after it, and on
    PostgreSQL the trigram index is there."""
    gf.deploy(NAMED)
    clerk = gf.clerk("li", "amr")
    case = gf.start("named", business_key="GF-2026-0017").id
    gf.start("named", business_key="GF-2026-0018")
    _downgrade(app, "0016")
    schema.upgrade(app.database)
    with app.database.session() as session:
        assert [t.instance_id for t in queries.list_tasks(session, clerk, q="0017")] == [case]
        assert len(queries.list_tasks(session, clerk, q="材料")) == 2
    assert _has_text_index(app) == _trigrams_available(app)


def _has_text_index(app: Govflow) -> bool:
    with app.database.engine.connect() as connection:
        indexes = {i["name"] for i in inspect(connection).get_indexes("task_candidates")}
    return "ix_task_candidates_text" in indexes


def _trigrams_available(app: Govflow) -> bool:
    if app.database.engine.dialect.name != "postgresql":
        return False
    with app.database.engine.connect() as connection:
        known = "SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'"
        return connection.exec_driver_sql(known).first() is not None


def _downgrade(app: Govflow, revision: str) -> None:
    with app.database.engine.begin() as connection:
        config = schema.alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@pytest.mark.parametrize(
    ("before", "indexed"),
    [
        # pg_trgm already there, in a schema not on the search path
        (
            "DROP EXTENSION IF EXISTS pg_trgm; CREATE SCHEMA trgm_aside; "
            "CREATE EXTENSION pg_trgm SCHEMA trgm_aside",
            True,
        ),
        # pg_trgm cannot be made: a function of its own name is in the way
        (
            "DROP EXTENSION IF EXISTS pg_trgm; "
            "CREATE FUNCTION public.similarity(text, text) RETURNS real "
            "LANGUAGE sql AS 'SELECT 0::real'",
            False,
        ),
    ],
    ids=["extension-elsewhere", "extension-refused"],
)
def test_the_0017_upgrade_completes_wherever_pg_trgm_is_or_is_not(gf, app, caplog, before, indexed):
    """The trigram index is an aid: the upgrade reaches 0017 and the search works whether
    the extension sits in another schema or cannot be created at all (then with a warning
    that says how to add the index by hand)."""
    if app.database.engine.dialect.name != "postgresql" or not _trigrams_available(app):
        pytest.skip("PostgreSQL with pg_trgm available: where it lives is what is tested")
    gf.deploy(NAMED)
    case = gf.start("named", business_key="GF-2026-0017").id
    _downgrade(app, "0016")
    try:
        with app.database.engine.begin() as connection:
            for statement in before.split("; "):
                connection.exec_driver_sql(statement)
        with caplog.at_level(logging.WARNING):
            schema.upgrade(app.database)
        assert schema.is_current(app.database)
        assert _has_text_index(app) == indexed
        assert ("ix_task_candidates_text was not made" in caplog.text) == (not indexed)
        with app.database.session() as session:
            found = queries.list_tasks(session, gf.clerk("li", "amr"), q="0017")
        assert [t.instance_id for t in found] == [case]
    finally:  # as the other tests expect it: pg_trgm in public, the index made
        _downgrade(app, "0016")
        with app.database.engine.begin() as connection:
            connection.exec_driver_sql("DROP FUNCTION IF EXISTS public.similarity(text, text)")
            connection.exec_driver_sql("DROP EXTENSION IF EXISTS pg_trgm")
            connection.exec_driver_sql("DROP SCHEMA IF EXISTS trgm_aside")
        schema.upgrade(app.database)
