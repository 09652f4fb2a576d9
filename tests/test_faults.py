"""Faults survived with real processes: the API killed with SIGKILL in the middle of commands,
PostgreSQL restarted under load. Afterwards every case progressed exactly once or not at all,
and finishing the work leaves each task completed exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy import create_engine, func, select, text

from engine.accounts import directory
from engine.accounts.passwords import hash_password
from engine.app import Govflow
from engine.config import Settings
from engine.errors import GovflowError
from engine.runtime import commands
from engine.store.models import AuditEvent, HumanTask
from tests import bpmn as b
from tests.api_support import PASSWORD

# alone, after the parallel part: it restarts PostgreSQL under running work
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get(
    "GOVFLOW_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TWO_STEP = b.doc(
    "two_step",
    b.start(),
    b.user("A", "受理", candidateGroups="center"),
    b.user("B", "审核", candidateGroups="center"),
    b.end(),
    *b.chain("start", "A", "B", "end"),
)
CASES = 40


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`govflow serve` as a child process."""

    def __init__(self, database_url: str) -> None:
        self.port = _free_port()
        env = {**os.environ, "GOVFLOW_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "govflow"), "serve", "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/definitions", timeout=2).status_code == 401:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.kill()
                raise AssertionError("govflow serve did not start")
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=15)


def _completions(app: Govflow, element: str) -> dict[str, int]:
    with app.database.read_session() as session:
        rows = session.execute(
            select(AuditEvent.instance_id, func.count())
            .where(AuditEvent.command == "complete", AuditEvent.element_id == element)
            .group_by(AuditEvent.instance_id)
        ).all()
    return {instance: count for instance, count in rows}


def _open(app: Govflow, element: str) -> dict[str, str]:
    with app.database.read_session() as session:
        rows = session.execute(
            select(HumanTask.instance_id, HumanTask.id).where(
                HumanTask.element_id == element, HumanTask.state == "open"
            )
        ).all()
    return {instance: task for instance, task in rows}


def _check_done_once_or_not_at_all(app: Govflow, cases: list[str]) -> tuple[int, int]:
    done = _completions(app, "A")
    open_a, open_b = _open(app, "A"), _open(app, "B")
    for case in cases:
        assert done.get(case, 0) <= 1, f"{case}: A completed {done[case]} times"
        if done.get(case):
            assert case in open_b and case not in open_a, f"{case}: half-done after the fault"
        else:
            assert case in open_a and case not in open_b, f"{case}: lost after the fault"
    return sum(1 for c in cases if done.get(c)), sum(1 for c in cases if not done.get(c))


def test_the_api_killed_mid_commands_leaves_each_case_done_once_or_not_at_all(app, gf):
    with app.database.session() as session:
        user = directory.add_user(session, "front", ["clerk"], ["center"])
        user.password_hash = hash_password(PASSWORD)
    gf.deploy(TWO_STEP)
    cases = [gf.start("two_step").id for _ in range(CASES)]
    tasks = _open(app, "A")

    server = Server(app.settings.database_url)
    token = httpx.post(
        f"{server.url}/api/auth/token", data={"username": "front", "password": PASSWORD}
    ).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    pending = list(tasks.values())
    lock = threading.Lock()

    def clerk() -> None:
        with httpx.Client(timeout=5) as client:
            while True:
                with lock:
                    if not pending:
                        return
                    task_id = pending.pop()
                try:
                    client.post(
                        f"{server.url}/api/tasks/{task_id}/complete",
                        headers=headers,
                        json={"data": {}},
                    )
                except httpx.HTTPError:
                    return  # the server is gone

    threads = [threading.Thread(target=clerk) for _ in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(_completions(app, "A")) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()  # SIGKILL in the middle of the clerks' commands
    for thread in threads:
        thread.join(timeout=30)

    done, not_done = _check_done_once_or_not_at_all(app, cases)
    assert done >= 5 and not_done >= 1, (done, not_done)

    server = Server(app.settings.database_url)
    try:
        token = httpx.post(
            f"{server.url}/api/auth/token", data={"username": "front", "password": PASSWORD}
        ).json()["access_token"]
        with httpx.Client(timeout=10) as client:
            for task_id in _open(app, "A").values():
                response = client.post(
                    f"{server.url}/api/tasks/{task_id}/complete",
                    headers={"Authorization": f"Bearer {token}"},
                    json={"data": {}},
                )
                assert response.status_code == 200, response.text
    finally:
        server.kill()
    assert _completions(app, "A") == dict.fromkeys(cases, 1)
    assert set(_open(app, "B")) == set(cases)


def _restart_postgresql() -> None:
    clusters = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    version, name = clusters.stdout.split()[:2]
    subprocess.run(["pg_ctlcluster", version, name, "restart"], check=True, timeout=120)


@pytest.fixture
def fault_pg(tmp_path: Path):
    """A database of its own on the local PostgreSQL, whatever database the suite runs on."""
    if shutil.which("pg_ctlcluster") is None or os.geteuid() != 0:
        message = "restarting PostgreSQL needs pg_ctlcluster and root"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    # a name of this run's own: two suite runs on one machine must not drop each other's
    name = f"govflow_faults_{os.getpid()}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {PG_ADMIN} is not reachable: {exc}", pytrace=False)
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    app = Govflow(replace(Settings(), database_url=url, forms_dir=None, script_timeout_s=3.0))
    app.init(ROOT / "processes" / "catalog" / "departments.tsv")
    yield app
    app.dispose()
    admin.dispose()  # its pooled connection died with the restart
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_postgresql_restarted_under_load_loses_nothing_and_does_nothing_twice(fault_pg, tmp_path):
    app = fault_pg
    from tests.support import GovflowHarness

    gf = GovflowHarness(app, tmp_path)
    clerk = gf.clerk("li", "center")
    gf.deploy(TWO_STEP)
    # Enough cases, completed at a clerk's pace, that work is still going on when the server
    # goes down (a command takes a few milliseconds: 40 cases were all done before it did).
    cases = [gf.start("two_step").id for _ in range(3 * CASES)]
    pending = list(_open(app, "A").values())
    failures: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                if not pending:
                    return
                task_id = pending.pop()
            time.sleep(0.05)
            for _ in range(60):  # a clerk retries until the database answers again
                try:
                    app.runner.execute(commands.CompleteTask(task_id, {}), clerk)
                    break
                except GovflowError as exc:
                    if "already completed" in exc.message:
                        break
                    failures.append(exc.message)
                except Exception as exc:  # the connection broke under the command
                    failures.append(type(exc).__name__)
                time.sleep(0.5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while len(_completions(app, "A")) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    _restart_postgresql()
    for thread in threads:
        thread.join(timeout=120)

    assert failures, "the restart should have interrupted some commands"
    assert _completions(app, "A") == dict.fromkeys(cases, 1), failures[-5:]
    assert set(_open(app, "B")) == set(cases) and _open(app, "A") == {}
