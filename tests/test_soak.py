"""A bounded soak: 50 clerk clients against a real `govflow serve` (with its job executor and
scheduler) on PostgreSQL for GOVFLOW_SOAK_SECONDS (60 in CI; 600 by hand). Every answer is a
success or an expected 409, every started case finishes, and the server's memory stays flat.

    GOVFLOW_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
    GOVFLOW_SOAK_SECONDS=600 .venv/bin/python -m pytest tests/test_soak.py -s
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections import Counter

import httpx2 as httpx
import pytest
from sqlalchemy import func, select

from engine.accounts import directory
from engine.accounts.passwords import hash_password
from engine.store.models import Instance
from tests import bpmn as b
from tests.api_support import PASSWORD
from tests.test_faults import Server
from tests.test_jobs import service

# alone, after the parallel part: eight clients and a server would starve the other worker
pytestmark = pytest.mark.serial

CLIENTS = 50
SOAK = b.doc(
    "soak",
    b.start(),
    b.user("accept", "受理", candidateGroups="center"),
    service("notify", "notify.sms", "短信通知"),
    b.user("approve", "审批", candidateGroups="center"),
    b.end(),
    *b.chain("start", "accept", "notify", "approve", "end"),
)


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_fifty_clerks_at_once(app, gf, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the soak runs in the PostgreSQL pass of the suite")
    seconds = float(os.environ.get("GOVFLOW_SOAK_SECONDS", "60"))
    gf.deploy(SOAK)
    with app.database.session() as session:
        for i in range(CLIENTS):
            user = directory.add_user(session, f"clerk{i}", ["clerk"], ["center"])
            user.password_hash = hash_password(PASSWORD)
    server = Server(database_url)
    statuses: Counter[int] = Counter()
    unexpected: list[str] = []
    started: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    logged_in = threading.Semaphore(0)

    def clerk(index: int) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            token = client.post(
                "/api/auth/token", data={"username": f"clerk{index}", "password": PASSWORD}
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            logged_in.release()

            def call(method: str, path: str, **kwargs: object) -> httpx.Response:
                began = time.perf_counter()
                response = client.request(method, path, **kwargs)
                with lock:
                    latencies.append(time.perf_counter() - began)
                    statuses[response.status_code] += 1
                    if response.status_code >= 400 and response.status_code != 409:
                        unexpected.append(
                            f"{method} {path}: {response.status_code} {response.text[:200]}"
                        )
                return response

            def finish_open_task(case_id: str) -> bool:
                """Claim and complete the case's open task, if it has one yet."""
                detail = call("GET", f"/api/instances/{case_id}")
                if detail.status_code != 200:
                    return False
                for task in detail.json()["tasks"]:
                    if task["state"] != "open":
                        continue
                    if call("POST", f"/api/tasks/{task['id']}/claim").status_code == 200:
                        call("POST", f"/api/tasks/{task['id']}/complete", json={"data": {}})
                        return True
                return False

            while time.monotonic() < stop:
                # a clerk takes a case from the counter to its end: start, accept, and once the
                # SMS job has run, approve; colleagues' queues give the 409s of shared work
                case = call(
                    "POST",
                    "/api/instances",
                    json={"definition_key": "soak", "variables": {"sms_to": "13800138000"}},
                )
                if case.status_code != 201:
                    continue
                case_id = case.json()["id"]
                with lock:
                    started.append(case_id)
                done = 0
                for _ in range(40):
                    if done == 2 or time.monotonic() > stop + 60:
                        break
                    if finish_open_task(case_id):
                        done += 1
                    else:
                        time.sleep(0.05)
                queue = call("GET", "/api/tasks", params={"scope": "group", "limit": 5})
                if queue.status_code == 200:
                    for task in queue.json()[:1]:
                        if call("POST", f"/api/tasks/{task['id']}/claim").status_code == 200:
                            call("POST", f"/api/tasks/{task['id']}/complete", json={"data": {}})

    try:
        threads = [threading.Thread(target=clerk, args=(i,)) for i in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for _ in range(CLIENTS):
            assert logged_in.acquire(timeout=120)
        time.sleep(min(10.0, max(0.0, stop - time.monotonic()) / 4))
        rss_early = _rss_kb(server.process.pid)  # after every clerk logged in and worked
        for thread in threads:
            thread.join(timeout=seconds + 120)
        rss_late = _rss_kb(server.process.pid)
        # let the clerks' work drain: finish every case still open
        with httpx.Client(base_url=server.url, timeout=30) as client:
            token = client.post(
                "/api/auth/token", data={"username": "clerk0", "password": PASSWORD}
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                queue = client.get("/api/tasks", params={"scope": "group", "limit": 500}).json()
                if not queue:
                    with app.database.read_session() as session:
                        running = session.scalar(
                            select(func.count())
                            .select_from(Instance)
                            .where(
                                Instance.definition_key == "soak", Instance.status != "completed"
                            )
                        )
                    if running == 0:
                        break
                    time.sleep(0.5)
                    continue
                for task in queue:
                    client.post(f"/api/tasks/{task['id']}/complete", json={"data": {}})
    finally:
        server.kill()

    with app.database.read_session() as session:
        by_status = dict(
            session.execute(
                select(Instance.status, func.count())
                .where(Instance.definition_key == "soak")
                .group_by(Instance.status)
            ).all()
        )
    assert by_status == {"completed": len(started)}, by_status  # every case finished
    completions = statuses[200]
    print(
        f"\nsoak {seconds:.0f}s, {CLIENTS} clerks: {sum(statuses.values())} requests "
        f"({sum(statuses.values()) / seconds:.0f}/s), statuses {dict(statuses)}, "
        f"{len(started)} cases, p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p99 {statistics.quantiles(latencies, n=100)[98] * 1000:.0f} ms, "
        f"server RSS {rss_early // 1024} -> {rss_late // 1024} MB"
    )
    assert unexpected == []
    assert completions > 0 and len(started) > CLIENTS
    assert rss_late < rss_early * 1.25 + 40_000, (rss_early, rss_late)  # flat, not growing
    detail = {s: c for s, c in statuses.items() if s not in (200, 201, 409)}
    assert detail == {}
