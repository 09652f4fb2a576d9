"""What the dispatcher spends on a job: its thread's CPU while commands commit new jobs one at
a time, each waking it (engine/jobs/wakeup.py), as in bench.e2e, where every case's service
task is one. The baseline is a bare commit (update one row) run by the same process.

    .venv/bin/python -m bench.dispatch [--db postgresql|sqlite] [--jobs 400]
                                       [--broker redis://127.0.0.1:6379/15]

The jobs go to Celery on the broker (queue `benchdispatch`, emptied at the end); nothing
consumes them, so what is measured is the dispatcher alone: its rounds (lease, hand over)
and the wake-ups between them. CPU comes from /proc in clock ticks, summed over all jobs;
the rounds are counted, since a round that leases several jobs costs less per job.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

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

TOPIC = "benchdispatch.job"
QUEUE = "benchdispatch"  # the topic's (engine/jobs/handlers.queue_for)
COMMITS = 500


def thread_cpu_s(native_id: int) -> float:
    fields = proc_stat(f"self/task/{native_id}")
    assert fields is not None, "the dispatcher's thread has gone"
    return cpu_seconds_of(fields)


def main() -> None:
    from sqlalchemy import func, select

    from engine.jobs import store
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

    rounds = 0
    claim_due = store.claim_due

    def counted_claim_due(*args: Any, **kwargs: Any) -> Any:
        """The dispatcher's rounds, counted: CPU per job also depends on jobs per round."""
        nonlocal rounds
        rounds += 1
        return claim_due(*args, **kwargs)

    store.claim_due = counted_claim_due  # type: ignore[assignment]

    def all_leased(count: int) -> None:
        deadline = time.monotonic() + 60
        while leased() < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"fewer than {count} jobs leased after 60 s: is the broker up?")
            time.sleep(0.01)

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
        all_leased(20)
        assert thread.native_id is not None
        cpu, began, first = thread_cpu_s(thread.native_id), time.perf_counter(), rounds
        for _ in range(args.jobs):
            add_job()
            time.sleep(0.005)  # the dispatcher idle again before the next job, as in bench.e2e
        all_leased(20 + args.jobs)
        cpu = thread_cpu_s(thread.native_id) - cpu
        elapsed, counted = time.perf_counter() - began, rounds - first
    finally:
        dispatcher.stop()
        try:  # the queue and its binding (kombu's Redis transport)
            with executor.app.connection_for_write() as connection:
                connection.default_channel.client.delete(
                    QUEUE, f"_kombu.binding.{QUEUE}", f"_kombu.binding_permanent.{QUEUE}"
                )
        except Exception as exc:
            print(f"could not empty the queue {QUEUE}: {exc}")
        executor.shutdown()
        app.database.dispose()
    per_job = cpu / args.jobs * 1000
    print(f"bare commit, this process's CPU: {commit:.2f} ms (mean of {COMMITS})")
    print(
        f"dispatcher thread's CPU per job: {per_job:.2f} ms "
        f"({cpu:.2f} s for {args.jobs} jobs in {elapsed:.1f} s), "
        f"{per_job / commit:.1f}x a bare commit"
    )
    per_round = args.jobs / max(counted, 1)
    print(f"dispatcher rounds meanwhile: {counted} ({per_round:.2f} jobs a round)")
    print(f"at the end: {load_note()}")


if __name__ == "__main__":
    main()
