"""What the dispatcher spends on a job: its thread's CPU while commands commit new jobs one at
a time, each waking it (engine/jobs/wakeup.py), as in bench.e2e, where every case's service
task is one. The baseline is a bare commit (update one row) run by the same process.

    .venv/bin/python -m bench.dispatch [--db postgresql|sqlite] [--jobs 400]
                                       [--broker redis://127.0.0.1:6379/15]

The jobs go to Celery on the broker (queue `benchdispatch`, emptied at the end); nothing
consumes them, so what is measured is the dispatcher alone: its rounds (lease, hand over)
and the wake-ups between them. CPU comes from /proc in clock ticks, summed over all jobs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import (
    REFERENCE_KEY,
    add_clerks,
    cpu_seconds_of,
    database_url,
    deploy,
    describe_url,
    load_note,
    machine,
    make_app,
    proc_stat,
    reference_bpmn,
)
from bench.persistence import bench_commit

TOPIC = "benchdispatch.job"  # its queue: benchdispatch (engine/jobs/handlers.queue_for)
COMMITS = 500


def thread_cpu_s(native_id: int) -> float:
    fields = proc_stat(f"self/task/{native_id}")
    assert fields is not None, "the dispatcher's thread has gone"
    return cpu_seconds_of(fields)


def main() -> None:
    from sqlalchemy import func, select

    from engine.jobs.dispatcher import Dispatcher
    from engine.jobs.executors import CeleryExecutor
    from engine.jobs.wakeup import job_added
    from engine.runtime import clock
    from engine.store.models import Job

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--jobs", type=int, default=400)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    print(f"bench.dispatch on {machine()}; {args.jobs} jobs, one per commit")
    url = database_url(args.db, "dispatch")
    app = make_app(url)
    print(f"database {describe_url(url)}, broker {args.broker}")
    with tempfile.TemporaryDirectory() as folder:
        deploy(app, Path(folder), REFERENCE_KEY, reference_bpmn())
    add_clerks(app, ["li"])
    case = app.start(REFERENCE_KEY, app.actor("li"), "DISPATCH-1", {"decision": "accept"})

    def add_job() -> None:
        """One job in a command-like transaction that says so, as the runner's outbox does."""
        now = clock.now()
        with app.database.write_session() as session:
            session.add(
                Job(
                    id=str(uuid.uuid4()),
                    instance_id=case.id,
                    task_id="bench",
                    element_id="bench",
                    topic=TOPIC,
                    state="pending",
                    payload={},
                    attempts=0,
                    max_attempts=3,
                    next_run_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
            job_added(session)

    def leased() -> int:
        with app.database.read_session() as session:
            count = session.scalar(
                select(func.count()).select_from(Job).where(Job.state == "running")
            )
            return int(count or 0)

    began = time.process_time()
    bench_commit(app, count=COMMITS)
    commit = (time.process_time() - began) / COMMITS * 1000
    executor = CeleryExecutor(args.broker)
    dispatcher = Dispatcher(app, executor)
    thread = dispatcher.start(poll_s=0.5)
    try:
        time.sleep(1.0)  # listening, its first round done: idle
        for _ in range(20):  # warm-up: statements prepared, the broker connected
            add_job()
            time.sleep(0.01)
        while leased() < 20:
            time.sleep(0.01)
        assert thread.native_id is not None
        cpu, began = thread_cpu_s(thread.native_id), time.perf_counter()
        for _ in range(args.jobs):
            add_job()
            time.sleep(0.005)  # the dispatcher idle again before the next job, as in bench.e2e
        while leased() < 20 + args.jobs:
            time.sleep(0.01)
        cpu = thread_cpu_s(thread.native_id) - cpu
        elapsed = time.perf_counter() - began
    finally:
        dispatcher.stop()
        with executor.app.connection_for_write() as connection:
            connection.default_channel.client.delete("benchdispatch")
        executor.shutdown()
        app.database.dispose()
    per_job = cpu / args.jobs * 1000
    print(f"bare commit, this process's CPU: {commit:.2f} ms (mean of {COMMITS})")
    print(
        f"dispatcher thread's CPU per job: {per_job:.2f} ms "
        f"({cpu:.2f} s for {args.jobs} jobs in {elapsed:.1f} s), "
        f"{per_job / commit:.1f}x a bare commit"
    )
    print(f"at the end: {load_note()}")


if __name__ == "__main__":
    main()
