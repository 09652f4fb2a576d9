"""Jobs on real Celery worker processes over Redis and RabbitMQ.

The brokers are the machine's services (GOVFLOW_TEST_REDIS_URL, GOVFLOW_TEST_AMQP_URL). With
CI=true a broker that cannot be reached fails the test; elsewhere the test is skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from kombu import Connection
from sqlalchemy import select

from engine.accounts import directory
from engine.app import Govflow
from engine.jobs.dispatcher import Dispatcher
from engine.jobs.executors import CeleryExecutor
from engine.store.models import AuditEvent, Job
from tests import bpmn as b
from tests.support import GovflowHarness
from tests.test_jobs import ID_CHECK, jobs_of, service

# alone, after the parallel part: its workers share the machine's Redis and RabbitMQ
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parent.parent
BROKERS = {
    "redis": os.environ.get("GOVFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/9"),
    "rabbitmq": os.environ.get("GOVFLOW_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"),
}
QUEUES = ("verify", "test")


def _reachable(url: str) -> bool:
    try:
        with Connection(url, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


def _require(url: str) -> None:
    if _reachable(url):
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"broker {url} is not reachable", pytrace=False)
    pytest.skip(f"broker {url} is not reachable (set CI=true to make this fail)")


def _purge(url: str) -> None:
    with Connection(url, connect_timeout=3) as connection:
        for queue in QUEUES:
            channel = connection.channel()
            try:
                channel.queue_purge(queue)
            except Exception:
                pass
            finally:
                with contextlib.suppress(Exception):
                    channel.close()


class Worker:
    """`govflow worker` as a child process, the way ops start it."""

    def __init__(self, database_url: str, broker_url: str) -> None:
        env = {
            **os.environ,
            "GOVFLOW_DATABASE_URL": database_url,
            "GOVFLOW_BROKER_URL": broker_url,
            "GOVFLOW_HANDLER_MODULES": "workers,tests.job_handlers",
            "PYTHONPATH": str(ROOT),
        }
        command = [
            str(Path(sys.executable).parent / "govflow"),
            "worker",
            "--queues",
            ",".join(QUEUES),
            "--pool",
            "solo",
        ]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(60):
            self.stop()
            raise AssertionError("worker did not start:\n" + "".join(self.lines[-40:]))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if " ready." in line:
                self.ready.set()

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(params=sorted(BROKERS), ids=sorted(BROKERS))
def broker(request) -> str:
    url = BROKERS[request.param]
    _require(url)
    _purge(url)
    return url


@pytest.fixture
def quick_app(settings) -> Iterator[Govflow]:
    """The dispatcher side: leases last the topic timeout plus eight seconds (room for a worker
    that just started to load its first job), so a dead worker is noticed within seconds."""
    app = Govflow(replace(settings, lease_grace_s=8.0))
    with app.database.session() as session:
        directory.seed_departments(session, [("center", "综合窗口"), ("amr", "市场监督管理局")])
    yield app
    app.dispose()


class Running:
    def __init__(self, app: Govflow, broker_url: str) -> None:
        self.dispatcher = Dispatcher(app, CeleryExecutor(broker_url))

    def __enter__(self) -> Dispatcher:
        self.dispatcher.start(poll_s=0.2)
        return self.dispatcher

    def __exit__(self, *exc: object) -> None:
        self.dispatcher.stop()
        self.dispatcher.executor.shutdown()


def wait_for(predicate, timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_celery_worker_verifies_id_numbers(quick_app, broker, tmp_path):
    gf = GovflowHarness(quick_app, tmp_path)
    gf.deploy(ID_CHECK)
    worker = Worker(quick_app.settings.database_url, broker)
    try:
        with Running(quick_app, broker):
            good = gf.start("id_check", id_number="11010519491231002X")
            bad = gf.start("id_check", id_number="110105194912310021")
            wait_for(
                lambda: all(
                    j.state == "completed" for i in (good, bad) for j in jobs_of(quick_app, i.id)
                ),
                what="both jobs",
            )
    finally:
        worker.stop()
    assert [t.element_id for t in gf.open_tasks(good.id)] == ["accept"]
    assert [t.element_id for t in gf.open_tasks(bad.id)] == ["correct"]


def test_a_worker_killed_mid_job_still_ends_with_the_job_applied_once(quick_app, broker, tmp_path):
    gf = GovflowHarness(quick_app, tmp_path)
    gf.deploy(
        b.doc(
            "slow",
            b.start(),
            service("call", "test.slow"),
            b.end(),
            *b.chain("start", "call", "end"),
        )
    )
    marker = tmp_path / "attempts.log"
    worker = Worker(quick_app.settings.database_url, broker)
    replacement = None
    try:
        with Running(quick_app, broker):
            instance = gf.start("slow", marker=str(marker))
            wait_for(
                lambda: marker.exists() and "attempt 1" in marker.read_text(),
                what="the first attempt to start",
            )
            # a second worker stands by, so the retry does not wait for a worker to boot
            # (a lease counts from dispatch: this topic's is 2 s + 8 s grace)
            replacement = Worker(quick_app.settings.database_url, broker)
            worker.kill()
            try:
                wait_for(
                    lambda: gf.detail(instance.id)["status"] == "completed",
                    timeout=90,
                    what="the case to finish",
                )
            except AssertionError:
                jobs = [(j.state, j.attempts, j.error) for j in jobs_of(quick_app, instance.id)]
                log = "".join(replacement.lines[-30:])
                raise AssertionError(f"case did not finish; jobs {jobs}\n{log}") from None
    finally:
        worker.stop()
        if replacement is not None:
            replacement.stop()
    # RabbitMQ may hand the dead worker's unacknowledged message to the stand-by worker while
    # the first lease still holds (the run then counts as attempt 1); Redis loses it, and the
    # dispatcher leases the job again when the lease runs out (attempt 2). Either way the job
    # ran again and exactly one result was applied.
    detail = gf.detail(instance.id)
    [job] = jobs_of(quick_app, instance.id)
    assert job.state == "completed"
    assert detail["variables"]["slow_done_on"] == job.attempts
    runs = marker.read_text().splitlines()
    assert runs[0] == "attempt 1" and len(runs) >= 2
    with quick_app.database.session() as session:
        applied = list(
            session.scalars(select(AuditEvent).where(AuditEvent.command == "job_result"))
        )
    assert len(applied) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own, so it can be stopped without touching the machine's."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = _free_port()
        self.dir = tmp_path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: _reachable(self.url), timeout=20, what="redis to start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class RabbitApp:
    """Stops and starts the machine's RabbitMQ application (the node keeps running)."""

    url = BROKERS["rabbitmq"]

    def start(self) -> None:
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
        wait_for(lambda: _reachable(self.url), timeout=60, what="rabbitmq to start")

    def stop(self) -> None:
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)


@pytest.fixture(params=["redis", "rabbitmq"])
def stoppable_broker(request, tmp_path):
    if request.param == "redis":
        if shutil.which("redis-server") is None:
            if os.environ.get("CI") == "true":
                pytest.fail("redis-server is not installed", pytrace=False)
            pytest.skip("redis-server is not installed")
        broker = PrivateRedis(tmp_path)
        broker.start()
        yield broker
        if broker.process.poll() is None:
            broker.stop()
        return
    _require(BROKERS["rabbitmq"])
    if shutil.which("rabbitmqctl") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("rabbitmqctl is not installed", pytrace=False)
        pytest.skip("rabbitmqctl is not installed")
    broker = RabbitApp()
    _purge(broker.url)
    try:
        yield broker
    finally:
        broker.start()


def test_with_the_broker_stopped_no_job_is_lost_and_cases_finish_after_it_is_back(
    quick_app, stoppable_broker, tmp_path
):
    gf = GovflowHarness(quick_app, tmp_path)
    gf.deploy(ID_CHECK)
    worker = Worker(quick_app.settings.database_url, stoppable_broker.url)
    try:
        with Running(quick_app, stoppable_broker.url):
            stoppable_broker.stop()
            instances = [gf.start("id_check", id_number="11010519491231002X") for _ in range(3)]
            time.sleep(3)  # dispatcher rounds fail to hand the jobs over meanwhile
            jobs = [j for i in instances for j in jobs_of(quick_app, i.id)]
            assert len(jobs) == 3
            assert all(j.state in ("pending", "running") and j.result is None for j in jobs)
            stoppable_broker.start()
            wait_for(
                lambda: all(
                    gf.detail(i.id)["status"] == "running" and gf.open_tasks(i.id)
                    for i in instances
                ),
                timeout=120,
                what="every case to reach its next task",
            )
    finally:
        worker.stop()
    for instance in instances:
        assert [t.element_id for t in gf.open_tasks(instance.id)] == ["accept"]
    jobs = [j for i in instances for j in jobs_of(quick_app, i.id)]
    assert [j.state for j in jobs] == ["completed"] * 3
    with quick_app.database.session() as session:
        assert session.scalars(select(Job).where(Job.state != "completed")).all() == []
        applied = session.scalars(
            select(AuditEvent.instance_id).where(AuditEvent.command == "job_result")
        ).all()
    assert sorted(applied) == sorted(i.id for i in instances)
