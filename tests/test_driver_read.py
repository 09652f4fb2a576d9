"""A command's first read run on the driver (engine/store/driver_sql.first) and made into ORM
objects (engine/store/orm_rows.py): the same values SQLAlchemy's own read gives, objects that
save like loaded ones, and the same errors when the connection is lost."""

from __future__ import annotations

from datetime import UTC

import pytest
from psycopg import pq
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from engine.errors import NotFound
from engine.runtime import commands, queries
from engine.store import driver_sql, orm_rows
from engine.store.models import HumanTask, Instance, Job
from tests.conftest import _is_pg
from tests.test_faults import TWO_STEP
from tests.test_pool_liveness import _kill_pooled_connections

CASE_READS = (commands._CASE_WITH_TASK, commands._CASE_WITH_TASK_AND_OPEN_IDS)


def _case_with_a_task(gf):
    gf.deploy(TWO_STEP)
    case = gf.start(
        "two_step", business_key="粤-2026-0042", 申请人="张三", note=None, 材料=["身份证", None]
    )
    return case, gf.task(case.id, "A")


def _read_on_the_driver_and_by_sqlalchemy(gf, statement, params):
    """The row `driver_sql.first` reads, checked to be the row `Connection.execute` reads and
    to have come the driver's way (a literal-execute parameter once kept a read off it)."""
    with gf.app.database.write_session() as session:
        connection = session.connection()
        assert driver_sql.compiled(statement, params, connection) is not None
        on_driver = driver_sql.first(statement, params, connection)
        assert on_driver == tuple(connection.execute(statement, params).one())
    return on_driver


@pytest.mark.parametrize("statement", CASE_READS, ids=["case", "case and open tasks"])
def test_a_read_on_the_driver_gives_what_sqlalchemy_reads(gf, statement):
    """JSON with Chinese text and nulls, aware timestamps, NULL columns, the aggregated ids:
    value for value what `Connection.execute` returns."""
    case, task = _case_with_a_task(gf)
    params = {"task_id": task.id}
    on_driver = _read_on_the_driver_and_by_sqlalchemy(gf, statement, params)
    instance = orm_rows.detached(Instance, on_driver[: len(orm_rows.columns(Instance))])
    assert instance.id == case.id and instance.business_key == "粤-2026-0042"
    assert instance.variables["申请人"] == "张三" and instance.variables["材料"] == ["身份证", None]
    assert instance.started_at.tzinfo == UTC and instance.ended_at is None


def test_a_job_results_read_on_the_driver_gives_what_sqlalchemy_reads(gf):
    """A job result reads its case, its job and the case's open task ids in one statement on
    the driver; a result for a job that does not exist is refused as not found."""
    from engine.jobs import store
    from engine.runtime import clock
    from engine.runtime.job_results import _CASE_WITH_JOB, _JOB_END, ApplyJobResult
    from tests.test_jobs import parallel_with

    gf.deploy(parallel_with("payment.check"))
    case = gf.start("with_job", fee_amount=0)
    [lease], _ = store.claim_due(gf.app.database, clock.now(), 10)
    on_driver = _read_on_the_driver_and_by_sqlalchemy(gf, _CASE_WITH_JOB, {"job_id": lease.job_id})
    job = orm_rows.detached(Job, on_driver[len(orm_rows.columns(Instance)) : _JOB_END])
    assert (job.id, job.instance_id, job.state) == (lease.job_id, case.id, "running")
    assert on_driver[_JOB_END] == gf.task(case.id, "meanwhile").id
    with pytest.raises(NotFound, match="no job no-such-job"):
        gf.app.runner.execute(ApplyJobResult("no-such-job", lease.token, "ok"), gf.ops)


def test_a_read_that_finds_nothing_gives_none_and_a_command_on_it_is_not_found(gf):
    gf.deploy(TWO_STEP)
    with gf.app.database.write_session() as session:
        params = {"task_id": "no-such-task"}
        assert driver_sql.first(commands._CASE_WITH_TASK, params, session.connection()) is None
    clerk = gf.clerk("li", "center")
    with pytest.raises(NotFound, match="no task no-such-task"):
        gf.complete("no-such-task", clerk)


def test_a_case_made_from_a_driver_row_saves_its_changes_like_a_loaded_one(gf):
    case, task = _case_with_a_task(gf)
    with gf.app.database.write_session() as session:
        row = driver_sql.first(commands._CASE_WITH_TASK, {"task_id": task.id}, session.connection())
        instance = orm_rows.persistent(session, Instance, row[: len(orm_rows.columns(Instance))])
        assert session.get(Instance, case.id) is instance  # the session knows it
        assert not session.dirty  # nothing to write until something changes
        instance.business_key = "粤-2026-0043"
        session.flush()
    with gf.app.database.read_session() as session:
        stored = session.get(Instance, case.id)
        assert stored.business_key == "粤-2026-0043"
        assert stored.version == case.version  # only the changed column was written
        assert stored.document == case.document


def test_a_task_row_made_from_values_is_whole_outside_any_session(gf):
    """The task row answers the caller after the session has closed: every column must be
    there without a lazy load (which a detached object cannot do)."""
    _case, task = _case_with_a_task(gf)
    clerk = gf.clerk("li", "center")
    claimed = gf.claim(task.id, clerk)
    assert (claimed.id, claimed.assignee, claimed.state) == (task.id, "li", "open")
    assert claimed.candidate_groups == ["center"] and claimed.created_at.tzinfo == UTC
    with pytest.raises(ValueError, match=r"HumanTask has \d+ columns, got 2 values"):
        orm_rows.detached(HumanTask, ("a", "b"))


def test_on_postgresql_the_read_opens_the_transaction_it_runs_in(gf):
    if not _is_pg():
        pytest.skip("SQLite's transaction is opened by SQLAlchemy (BEGIN IMMEDIATE)")
    _case, task = _case_with_a_task(gf)
    with gf.app.database.write_session() as session:
        connection = session.connection()
        driver = connection.connection.driver_connection
        assert driver.pgconn.transaction_status == pq.TransactionStatus.IDLE
        driver_sql.first(commands._CASE_WITH_TASK, {"task_id": task.id}, connection)
        assert driver.pgconn.transaction_status == pq.TransactionStatus.INTRANS


def test_a_read_on_a_lost_connection_fails_as_a_lost_connection_does_in_sqlalchemy(gf, settings):
    """The runner runs a command again only on SQLAlchemy's error with the connection marked
    invalidated; a raw driver error would not be retried."""
    if not _is_pg():
        pytest.skip("a SQLite connection cannot be lost")
    _case, task = _case_with_a_task(gf)
    with gf.app.database.engine.connect() as connection:
        connection.execute(select(1))
        assert _kill_pooled_connections(settings) >= 1
        with pytest.raises(DBAPIError) as failed:
            driver_sql.first(commands._CASE_WITH_TASK, {"task_id": task.id}, connection)
    assert failed.value.connection_invalidated
    assert "terminat" in str(failed.value.orig)


@pytest.mark.parametrize("locked", [True, False], ids=["pick", "look without locking"])
def test_claim_nexts_pick_on_the_driver_gives_what_sqlalchemy_reads(gf, locked):
    case, task = _case_with_a_task(gf)
    li = gf.clerk("li", "center")
    statement, params = queries.next_unclaimed_task(queries.queue_ranges(li), locked=locked)
    on_driver = _read_on_the_driver_and_by_sqlalchemy(gf, statement, params)
    assert on_driver[0] == case.id and task.id in on_driver
