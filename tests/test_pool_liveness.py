"""Pooled PostgreSQL connections that died (engine/store/pool_liveness.py): one that died while
idle is replaced before a command uses it; one that died a moment after its last use fails its
first statement, and the command runs again on a fresh connection, once; a read that meets a
dead connection answers 503 so that the client sends it again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, make_url, select, text
from sqlalchemy.pool import NullPool

from engine.app import Govflow
from engine.config import Settings
from engine.store import write_batch
from engine.store.db import Database
from engine.store.models import AuditEvent
from tests.api_support import ApiHarness
from tests.conftest import _is_pg
from tests.support import GovflowHarness
from tests.test_faults import TWO_STEP  # the same two-step flow the fault tests use


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if not _is_pg():
        pytest.skip("SQLite opens its file per connection; the pool check is PostgreSQL's")


def _harness(settings: Settings, tmp_path: Path, ping_after_idle_s: float) -> GovflowHarness:
    database = Database(settings.database_url, ping_after_idle_s=ping_after_idle_s)
    return GovflowHarness(Govflow(settings, database), tmp_path)


@pytest.fixture
def harnesses(settings: Settings, tmp_path: Path) -> Iterator[list[GovflowHarness]]:
    made: list[GovflowHarness] = []
    yield made
    for harness in made:
        harness.app.dispose()


def _kill_pooled_connections(settings: Settings) -> int:
    """Terminate every other server process on the test database, as a restart would."""
    url = make_url(settings.database_url).set(drivername="postgresql+psycopg")
    admin = create_engine(url, poolclass=NullPool)
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                ).all()
            )
    finally:
        admin.dispose()


def _completions(gf: GovflowHarness, instance_id: str) -> int:
    with gf.app.database.read_session() as session:
        return session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.instance_id == instance_id, AuditEvent.command == "complete")
        )


def _ready_case(gf: GovflowHarness) -> tuple[str, str]:
    gf.deploy(TWO_STEP)
    case = gf.start("two_step")
    return case.id, gf.task(case.id, "A").id


def test_a_connection_killed_while_idle_is_replaced_before_a_read_uses_it(
    settings, tmp_path, harnesses
):
    gf = _harness(settings, tmp_path, ping_after_idle_s=0.2)
    harnesses.append(gf)
    clerk = gf.clerk("li", "center")
    case, task = _ready_case(gf)
    assert _kill_pooled_connections(settings) >= 1
    time.sleep(0.3)
    # a read is not run again on failure: the pool must hand out a live connection
    assert [t.id for t in gf.worklist(clerk)] == [task]
    gf.complete(task, clerk)
    assert _completions(gf, case) == 1
    assert gf.task(case, "B").state == "open"


def test_a_connection_that_died_just_after_use_costs_the_command_one_more_try_not_a_failure(
    settings, tmp_path, harnesses
):
    gf = _harness(settings, tmp_path, ping_after_idle_s=3600)  # never pinged in this test
    harnesses.append(gf)
    clerk = gf.clerk("li", "center")
    case, task = _ready_case(gf)
    assert _kill_pooled_connections(settings) >= 1
    gf.complete(task, clerk)
    assert _completions(gf, case) == 1
    assert gf.task(case, "B").state == "open"


def test_a_read_on_a_connection_lost_a_moment_ago_answers_503_and_the_next_one_works(
    settings, tmp_path, harnesses
):
    """A read is not run again by the server; the client is told to send it again (503 with
    Retry-After), and the pool has dropped its dead connections by then."""
    gf = _harness(settings, tmp_path, ping_after_idle_s=3600)  # never pinged in this test
    harnesses.append(gf)
    api = ApiHarness(gf.app)
    api.user("zhang", ["clerk"], ["center"])
    _case, task = _ready_case(gf)
    assert [t["id"] for t in api.get("/api/tasks", "zhang").json()] == [task]
    assert _kill_pooled_connections(settings) >= 1
    lost = api.get("/api/tasks", "zhang")
    assert lost.status_code == 503, lost.text
    assert lost.headers["Retry-After"] == "1"
    assert lost.json()["error"] == "unavailable"
    assert "try again in a moment" in lost.json()["message"]
    again = api.get("/api/tasks", "zhang")
    assert again.status_code == 200 and [t["id"] for t in again.json()] == [task]


def test_a_claim_whose_connection_is_lost_with_its_commit_is_not_run_again(
    settings, tmp_path, harnesses, monkeypatch
):
    """Whether a COMMIT that was on its way when the connection died went through is
    unknown: the clerk is told so (503 outcome_unknown) and the command is not run again on
    their behalf, which for claim-next could hand them a second task."""
    gf = _harness(settings, tmp_path, ping_after_idle_s=3600)
    harnesses.append(gf)
    api = ApiHarness(gf.app)
    api.user("zhang", ["clerk"], ["center"])
    _case, task = _ready_case(gf)
    api.login("zhang")
    # the server process ends itself where the COMMIT would run, after the command's writes
    # and with the COMMIT's place in the batch taken: exactly "lost while committing"
    monkeypatch.setattr(write_batch, "COMMIT", "SELECT pg_terminate_backend(pg_backend_pid())")
    lost = api.post("/api/tasks/claim-next", "zhang")
    monkeypatch.undo()
    assert lost.status_code == 503, lost.text
    assert lost.json()["error"] == "outcome_unknown"
    assert "may or may not have been saved" in lost.json()["message"]
    assert api.get("/api/tasks?scope=mine", "zhang").json() == []  # not claimed behind its back
    again = api.post("/api/tasks/claim-next", "zhang")
    assert again.status_code == 200 and again.json()["id"] == task
