"""Issue 12b: end to end over HTTP. `govflow serve` and `govflow worker` (Celery, Redis
broker) on PostgreSQL, driven by N concurrent clerk clients that work the department queue:
by default as a counter clerk does, pressing "next" (POST /api/tasks/claim-next) and completing
what it hands out; with `--clerk browse` as the worklist page does, listing the queue, claiming
a task from it and completing it. A clerk starts a new case of the reference flow (ten user
tasks, then a `notify.sms` job for the worker) when the queue runs short. Goals: >= 300
task completions/s, >= 30 instances/s, p99 completion < 100 ms.

    .venv/bin/python -m bench.e2e [--clients 8] [--duration 30] [--warmup 5] [--servers 1]
                                  [--workers 1] [--http-workers 1] [--access-log]
                                  [--http-client lean|httpx]

The clerks share the machine's two cores with what they measure, so by default they speak
HTTP with the standard library's `http.client` (bench/lean_http.py), which costs a fraction
of httpx's CPU per request; `--http-client httpx` runs them on httpx as before.

Every process it starts is stopped at the end (and on Ctrl-C); the run is bounded by
`--duration` (use e.g. `--duration 300` for a longer run). The baseline in the same run is
one bare round trip to the API (GET /openapi.json is cached, so it is the HTTP stack alone).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from sqlalchemy import text

from bench.common import (
    CLERK_PASSWORD,
    REFERENCE_KEY,
    USER_TASKS,
    add_clerks,
    cpu_seconds_of,
    deploy,
    fresh_postgres,
    load_note,
    machine,
    make_app,
    percentile,
    proc_stat,
    reference_bpmn,
    summary_ms,
    verdict,
)
from bench.lean_http import LeanClient, LeanHTTPError

REDIS_URL = "redis://127.0.0.1:6379/7"
GOVFLOW = str(Path(sys.executable).with_name("govflow"))
HTTP_ERRORS = (httpx2.HTTPError, LeanHTTPError)
Http = LeanClient | httpx2.Client
START_VARIABLES = {"decision": "accept", "phone": "13912345678", "applicant_name": "张三"}


@dataclass
class Figures:
    """What one client saw; merged at the end."""

    completions: list[tuple[float, float]] = field(default_factory=list)  # (at, seconds)
    claims: list[float] = field(default_factory=list)
    lists: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process group (the process started in its own session,
    all its threads and its worker processes), from /proc."""
    total = 0.0
    for entry in Path("/proc").glob("[0-9]*"):
        fields = proc_stat(entry.name)
        if fields is not None and int(fields[2]) == pid:  # the process group
            total += cpu_seconds_of(fields)
    return total


SERVICES = ("postgres", "redis-server")


def services_cpu_seconds() -> dict[str, float]:
    """CPU time of the machine's database and broker, all their processes (a backend that
    exits within the window takes its time with it: pooled connections stay)."""
    totals = dict.fromkeys(SERVICES, 0.0)
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if name in totals and (fields := proc_stat(entry.name)) is not None:
            totals[name] += cpu_seconds_of(fields)
    return totals


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU ticks of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited with {process.returncode}")
        try:
            if httpx2.get(url, timeout=1).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def clear_redis() -> None:
    """Empty db 7 of the local Redis so a previous run's messages are not replayed."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


class Processes:
    """The servers and workers, each in its own process group so all of it can be stopped."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[bytes]] = []

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [GOVFLOW, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.started:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def token(base: str, username: str) -> str:
    response = httpx2.post(
        f"{base}/api/auth/token",
        data={"username": username, "password": CLERK_PASSWORD},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def clerk(
    base: str,
    username: str,
    measure_from: float,
    stop_at: float,
    clients: int,
    figures: Figures,
    style: str,
    lean: bool,
) -> None:
    """One clerk working tasks in the given style until the run ends."""
    rng = random.Random(username)
    work = CLERK_STYLES[style]
    headers = {"Authorization": f"Bearer {token(base, username)}"}
    with open_http(base, headers, lean) as http:
        while time.monotonic() < stop_at:
            try:
                work(http, rng, clients, measure_from, figures)
            except HTTP_ERRORS as exc:
                figures.errors.append(f"{type(exc).__name__}: {exc}")


def open_http(base: str, headers: dict[str, str], lean: bool) -> Http:
    if lean:
        return LeanClient(base, headers=headers, timeout=30)
    return httpx2.Client(base_url=base, headers=headers, timeout=30)


def work_next(
    http: Http, rng: random.Random, clients: int, measure_from: float, figures: Figures
) -> None:
    """A counter clerk: press "next" (claim the soonest due task of the queue), complete it;
    start a case when nothing is waiting."""
    began = time.monotonic()
    claimed = http.post("/api/tasks/claim-next")
    measured = began >= measure_from
    if claimed.status_code == 404:
        start_case(http, measured, figures)
        return
    if measured:
        figures.claims.append(time.monotonic() - began)
    if claimed.status_code != 200:
        figures.errors.append(f"claim-next {claimed.status_code}: {claimed.text[:200]}")
        return
    complete(http, claimed.json()["id"], measure_from, figures)


def start_case(http: Http, measured: bool, figures: Figures) -> None:
    began = time.monotonic()
    started = http.post(
        "/api/instances", json={"definition_key": REFERENCE_KEY, "variables": START_VARIABLES}
    )
    if measured:
        figures.starts.append(time.monotonic() - began)
    if started.status_code != 201:
        figures.errors.append(f"start {started.status_code}: {started.text[:200]}")


def complete(http: Http, task_id: str, measure_from: float, figures: Figures) -> None:
    began = time.monotonic()
    done = http.post(f"/api/tasks/{task_id}/complete", json={"data": {"note": "ok"}})
    ended = time.monotonic()
    if done.status_code != 200:
        figures.errors.append(f"complete {done.status_code}: {done.text[:200]}")
        return
    if began >= measure_from:
        figures.completions.append((began, ended - began))


def work_browse(
    http: Http, rng: random.Random, clients: int, measure_from: float, figures: Figures
) -> None:
    """A clerk who reads the queue, picks a task from it and claims it (409 when a colleague
    was quicker); starts a case when the queue holds fewer than two tasks per clerk."""
    began = time.monotonic()
    response = http.get("/api/tasks", params={"scope": "group", "limit": 50})
    measured = began >= measure_from
    if measured:
        figures.lists.append(time.monotonic() - began)
    response.raise_for_status()
    queue = [t for t in response.json() if t["assignee"] is None]
    if len(queue) < 2 * clients:
        start_case(http, measured, figures)
        if not queue:
            return
    task = rng.choice(queue)
    began = time.monotonic()
    claimed = http.post(f"/api/tasks/{task['id']}/claim")
    if measured:
        figures.claims.append(time.monotonic() - began)
    if claimed.status_code == 409:
        figures.conflicts += 1
        return
    if claimed.status_code != 200:
        figures.errors.append(f"claim {claimed.status_code}: {claimed.text[:200]}")
        return
    complete(http, task["id"], measure_from, figures)


CLERK_STYLES = {"next": work_next, "browse": work_browse}


def baseline(base: str, lean: bool, count: int = 300) -> list[float]:
    """Bare HTTP round trips to the same server (no database), on the clerks' client."""
    times = []
    with open_http(base, {}, lean) as http:
        for _ in range(count):
            began = time.monotonic()
            http.get("/openapi.json").raise_for_status()
            times.append(time.monotonic() - began)
    return times


def database_figures(app: Any, since_wall: float, until_wall: float) -> dict[str, Any]:
    """Cases completed and job latency in the measured window, read from the database."""
    window = {"since": since_wall, "until": until_wall}
    with app.database.engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(*) FROM instances WHERE status = 'completed' "
                "AND ended_at >= to_timestamp(:since) AND ended_at < to_timestamp(:until)"
            ),
            window,
        ).scalar()
        jobs = connection.execute(
            text(
                "SELECT extract(epoch FROM completed_at - created_at) FROM jobs "
                "WHERE state = 'completed' AND completed_at >= to_timestamp(:since) "
                "AND completed_at < to_timestamp(:until)"
            ),
            window,
        ).all()
        states = dict(
            connection.execute(text("SELECT state, count(*) FROM jobs GROUP BY state")).all()
        )
        incidents = connection.execute(text("SELECT count(*) FROM incidents")).scalar()
    return {
        "ended": int(ended or 0),
        "job_latency": [float(r[0]) for r in jobs],
        "job_states": states,
        "incidents": int(incidents or 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--servers", type=int, default=1, help="govflow serve processes")
    parser.add_argument("--workers", type=int, default=1, help="govflow worker processes")
    parser.add_argument(
        "--http-workers", type=int, default=1, help="serve --workers: HTTP processes per server"
    )
    parser.add_argument(
        "--access-log", action="store_true", help="keep serve's access log (off by default)"
    )
    parser.add_argument(
        "--clerk",
        choices=sorted(CLERK_STYLES),
        default="next",
        help="next: claim-next then complete (a counter clerk); browse: list the queue, "
        "claim a task from it, complete it",
    )
    parser.add_argument(
        "--http-client",
        choices=("lean", "httpx"),
        default="lean",
        help="the clerks' HTTP client: lean (http.client, bench/lean_http.py) or httpx",
    )
    args = parser.parse_args()
    lean = args.http_client == "lean"
    print(
        f"bench.e2e on {machine()}; {args.clients} clerk clients, {args.servers} server(s), "
        f"{args.workers} Celery worker(s), {args.duration:.0f} s measured, clerks work the "
        f"{args.clerk!r} way on {args.http_client}"
    )
    url = fresh_postgres("bench_e2e")
    app = make_app(url)
    with tempfile.TemporaryDirectory() as folder:
        deploy(app, Path(folder), REFERENCE_KEY, reference_bpmn(with_job=True))
    clerks = [f"clerk{i:02d}" for i in range(args.clients)]
    add_clerks(app, clerks)
    clear_redis()

    env = {
        **os.environ,
        "GOVFLOW_DATABASE_URL": url,
        "GOVFLOW_BROKER_URL": REDIS_URL,
        "GOVFLOW_FORMS_DIR": "",
    }
    logs = Path(tempfile.mkdtemp(prefix="govflow-e2e-"))
    processes = Processes(env, logs)
    try:
        bases = []
        for index in range(args.servers):
            port = free_port()
            server = processes.spawn(
                f"serve{index}",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(args.http_workers),
                *([] if args.access_log else ["--no-access-log"]),
            )
            bases.append(f"http://127.0.0.1:{port}")
            wait_for(f"{bases[-1]}/openapi.json", server)
        for index in range(args.workers):
            processes.spawn(f"worker{index}", "worker", "--queues", "notify", "--concurrency", "2")
        bare = baseline(bases[0], lean)

        figures = [Figures() for _ in clerks]
        now = time.monotonic()
        measure_from = now + args.warmup
        stop_at = measure_from + args.duration
        wall_from = time.time() + args.warmup
        threads = [
            threading.Thread(
                target=clerk,
                args=(
                    bases[i % len(bases)],
                    name,
                    measure_from,
                    stop_at,
                    args.clients,
                    mine,
                    args.clerk,
                    lean,
                ),
                daemon=True,
            )
            for i, (name, mine) in enumerate(zip(clerks, figures, strict=True))
        ]
        for thread in threads:
            thread.start()
        time.sleep(max(0.0, measure_from - time.monotonic()))
        cpu_before = {p.pid: cpu_seconds(p.pid) for p in processes.started}
        services_before = services_cpu_seconds()
        busy_before, total_before = machine_busy()
        client_before = sum(os.times()[:2])
        time.sleep(max(0.0, stop_at - time.monotonic()))
        cpu = {p.pid: cpu_seconds(p.pid) - cpu_before[p.pid] for p in processes.started}
        services_after = services_cpu_seconds()
        busy_after, total_after = machine_busy()
        client_cpu = sum(os.times()[:2]) - client_before
        for thread in threads:
            thread.join(args.warmup + args.duration + 120)
        wall_until = wall_from + args.duration
        time.sleep(1.0)
        stored = database_figures(app, wall_from, wall_until)
    finally:
        processes.stop()

    completions = [s for f in figures for at, s in f.completions if at < stop_at]
    claims = [s for f in figures for s in f.claims]
    lists = [s for f in figures for s in f.lists]
    starts = [s for f in figures for s in f.starts]
    errors = [e for f in figures for e in f.errors]
    conflicts = sum(f.conflicts for f in figures)
    rate = len(completions) / args.duration
    instances = stored["ended"] / args.duration
    p50 = percentile(completions, 50)
    p99 = percentile(completions, 99)
    print(f"baseline, bare HTTP round trip:   {summary_ms(bare)}")
    print(f"complete (POST .../complete):     {summary_ms(completions)}")
    claim_path = "claim-next" if args.clerk == "next" else ".../claim"
    print(f"claim (POST {claim_path}):".ljust(34) + summary_ms(claims))
    if lists:
        print(f"worklist (GET /api/tasks):        {summary_ms(lists)}")
    print(f"start (POST /api/instances):      {summary_ms(starts)}")
    print(f"claim conflicts (409):            {conflicts}; errors: {len(errors)}")
    for line in sorted(set(errors))[:5]:
        print(f"  e.g. {line}")
    if stored["job_latency"]:
        print(f"notify.sms job, created->done:    {summary_ms(stored['job_latency'])}")
    print(
        f"jobs by state at the end:         {stored['job_states']}; incidents {stored['incidents']}"
    )
    print(
        f"task completions/s: {rate:.1f} (goal >= 300: {rate / 300:.2f}x, "
        f"{verdict(rate, 300, lower_is_better=False)})"
    )
    print(
        f"instances/s (completed in window, {len(USER_TASKS)} tasks + 1 job each): "
        f"{instances:.1f} (goal >= 30: {instances / 30:.2f}x, "
        f"{verdict(instances, 30, lower_is_better=False)})"
    )
    print(
        f"completion latency p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms "
        f"(goal p99 < 100 ms: {p99 / 0.1:.2f}x, {verdict(p99, 0.1)}); "
        f"p50 is {p50 / percentile(bare, 50):.1f}x a bare round trip"
    )
    busy = (busy_after - busy_before) / max(1.0, total_after - total_before)
    print(
        f"CPU in the measured window: machine {busy * 100:.0f}% busy (all processes, both "
        f"cores); clients {client_cpu:.1f} s"
    )
    used_by = {" ".join(str(a) for a in p.args[1:3]): cpu[p.pid] for p in processes.started}
    for name in SERVICES:
        used_by[f"{name} (all its processes)"] = services_after[name] - services_before[name]
    for name, used in used_by.items():
        per = used / len(completions) * 1000 if completions else float("nan")
        print(
            f"  {name}: {used:.1f} CPU s = {used / args.duration * 100:.0f}% of one core, "
            f"{per:.1f} CPU ms per task completion"
        )
    print(f"server and worker logs: {logs}")
    print(f"at the end: {load_note()}")
    app.dispose()


if __name__ == "__main__":
    main()
