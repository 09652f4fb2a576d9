"""Issue 12a: what persistence costs. The engine (SQLite and PostgreSQL) against raw
SpiffWorkflow in memory on the same 10-task reference flow, and one bare commit on the same
database, so the goal "a persisted step costs at most 2x a raw step plus one commit" can be
read off one run.

    .venv/bin/python -m bench.persistence [--db sqlite|postgresql|both] [--instances 200]
                                          [--profile [cumulative|tottime]] [--pre-ping]

A step is one user-task completion with the engine steps it triggers. Layers measured:
  raw      SpiffWorkflow 3.2 alone (CamundaParser spec, default script engine), in memory
  spec     the engine's deployed spec and sandboxed script engine, still in memory
  document `spec` plus loading and dumping the instance document around every step
  floor    PostgreSQL: `document` with the row read and written back by psycopg alone, in
           two round trips, and nothing else (a minimal document-only design)
  engine   the whole command: transaction, document, projections, audit, commit
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import re
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from psycopg import pq
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import event, select, update

from bench.common import (
    REFERENCE_KEY,
    USER_TASKS,
    add_clerks,
    database_url,
    deploy,
    describe_url,
    load_note,
    machine,
    make_app,
    open_tasks,
    reference_bpmn,
    summary_ms,
    verdict,
)

START_DATA = {"decision": "accept"}
COUNTED_INSTANCES = 20  # the untimed pass that counts statements and round trips
STEPS = len(USER_TASKS)


def ready_user_tasks(workflow: BpmnWorkflow) -> list[Any]:
    return workflow.get_tasks(state=TaskState.READY, manual=True)


def complete_next(workflow: BpmnWorkflow) -> None:
    """A clerk's step in memory: the one ready user task completed with the engine steps it
    triggers (what every layer below times)."""
    [task] = ready_user_tasks(workflow)
    task.data.update({"note": "ok"})
    task.run()
    workflow.do_engine_steps()


def run_in_memory(workflow: BpmnWorkflow, step_times: list[float]) -> None:
    """Drive one instance to its end, timing each completion with its engine steps."""
    workflow.task_tree.data.update(START_DATA)
    workflow.do_engine_steps()
    while not workflow.completed:
        [task] = ready_user_tasks(workflow)
        began = time.perf_counter()
        task.data.update({"note": "ok"})
        task.run()
        workflow.do_engine_steps()
        step_times.append(time.perf_counter() - began)


def bench_raw(instances: int) -> tuple[float, list[float]]:
    """Raw SpiffWorkflow: returns (instances/s, step times)."""
    parser = CamundaParser()
    parser.add_bpmn_str(reference_bpmn().encode("utf-8"))
    spec = parser.get_spec(REFERENCE_KEY)
    subprocesses = parser.get_subprocess_specs(REFERENCE_KEY)
    for _ in range(20):
        run_in_memory(BpmnWorkflow(spec, subprocesses), [])
    steps: list[float] = []
    began = time.perf_counter()
    for _ in range(instances):
        run_in_memory(BpmnWorkflow(spec, subprocesses), steps)
    return instances / (time.perf_counter() - began), steps


def bench_engine_spec(app: Any, version_id: int, instances: int, documents: bool) -> list[float]:
    """The engine's own spec and script engine in memory; with `documents`, the instance
    document is loaded before and dumped after every step as the runner does."""
    from engine.runtime.history import prune_history
    from engine.runtime.serializer import dump_workflow, load_workflow

    with app.database.read_session() as session:
        loaded = app.services.versions.get(session, version_id)
    script_engine = app.services.script_engine
    steps: list[float] = []
    for n in range(instances + 10):
        workflow = BpmnWorkflow(loaded.spec, loaded.subprocess_specs, script_engine=script_engine)
        workflow.task_tree.data.update(START_DATA)
        workflow.do_engine_steps()
        document = dump_workflow(workflow)
        while not workflow.completed:
            began = time.perf_counter()
            if documents:
                workflow = load_workflow(
                    document, loaded.spec, loaded.subprocess_specs, script_engine
                )
            complete_next(workflow)
            if documents:
                prune_history(workflow)
                document = dump_workflow(workflow)
            if n >= 10:
                steps.append(time.perf_counter() - began)
    return steps


def bench_floor(app: Any, version_id: int, instances: int) -> tuple[list[float], list[float]]:
    """PostgreSQL: a minimal design that reads the case's document and writes it back each
    step, and nothing else, measured here. The engine's in-memory step with its document
    (as `bench_engine_spec(documents=True)`), around it psycopg alone: the row read in the
    transaction's first round trip (BEGIN with it), the fenced write and the COMMIT in one
    more. No SQLAlchemy, no task rows, queues, element counts, variables column or audit
    row, and a table of one index whose updates can be HOT: what a step costs before the
    engine's own work. Returns each step's time and this process's CPU time in it."""
    import psycopg

    from engine.runtime.history import prune_history
    from engine.runtime.serializer import dump_workflow, load_workflow
    from engine.store.one_send import one_send

    with app.database.read_session() as session:
        loaded = app.services.versions.get(session, version_id)
    script_engine = app.services.script_engine
    url = app.database.engine.url.set(drivername="postgresql")
    steps: list[float] = []
    cpus: list[float] = []
    # autocommit: the steps send their own BEGIN and COMMIT, each with another statement
    with psycopg.connect(url.render_as_string(hide_password=False), autocommit=True) as driver:
        driver.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor (id int PRIMARY KEY, version int NOT NULL, "
            "updated_at timestamptz NOT NULL, document text NOT NULL)"
        )
        for n in range(instances + 10):
            workflow = BpmnWorkflow(
                loaded.spec, loaded.subprocess_specs, script_engine=script_engine
            )
            workflow.task_tree.data.update(START_DATA)
            workflow.do_engine_steps()
            driver.execute(
                "INSERT INTO bench_floor VALUES (%s, 0, now(), %s)", (n, dump_workflow(workflow))
            )
            while not workflow.completed:
                cpu, began = time.process_time(), time.perf_counter()
                with one_send(driver):  # each pipeline in one socket write, as the engine's
                    driver.execute("BEGIN")
                    cursor = driver.execute(
                        "SELECT version, document FROM bench_floor WHERE id = %s", (n,)
                    )
                version, document = cursor.fetchone()  # type: ignore[misc]
                workflow = load_workflow(
                    document, loaded.spec, loaded.subprocess_specs, script_engine
                )
                complete_next(workflow)
                prune_history(workflow)
                with one_send(driver):
                    written = driver.execute(
                        "UPDATE bench_floor SET version = %s, updated_at = now(), document = %s "
                        "WHERE id = %s AND version = %s",
                        (version + 1, dump_workflow(workflow), n, version),
                    )
                    driver.execute("COMMIT")
                assert written.rowcount == 1
                if n >= 10:
                    steps.append(time.perf_counter() - began)
                    cpus.append(time.process_time() - cpu)
        driver.execute("DROP TABLE bench_floor")  # its dead rows vacuumed during later timings
    return steps, cpus


def bench_commit(app: Any, count: int = 500, cpus: list[float] | None = None) -> list[float]:
    """One bare write transaction: update one row and commit, as the runner's sessions do;
    with `cpus`, each one's CPU time in this process is added to it."""
    from engine.store.models import Sequence

    with app.database.session() as session:
        if session.get(Sequence, "bench.commit") is None:
            session.add(Sequence(name="bench.commit", value=0))
    times: list[float] = []
    for _ in range(count):
        cpu, began = time.process_time(), time.perf_counter()
        with app.database.write_session() as session:
            session.execute(
                update(Sequence)
                .where(Sequence.name == "bench.commit")
                .values(value=Sequence.value + 1)
            )
        times.append(time.perf_counter() - began)
        if cpus is not None:
            cpus.append(time.process_time() - cpu)
    return times


def bench_engine(
    app: Any,
    actor: Any,
    instances: int,
    profile: cProfile.Profile | None,
    counter: StatementCounter | None = None,
    warmup: int = 10,
    step_cpus: list[float] | None = None,
) -> tuple[float, list[float], list[float]]:
    """The engine: returns (instances/s, start times, step times), after `warmup` cases that
    are not timed; with `step_cpus`, each step's CPU time in this process is added to it.
    Looking up the next open task (a read the client does) is inside instances/s but outside
    the step times."""
    from engine.runtime import commands

    def one(index: int, starts: list[float], steps: list[float]) -> None:
        began = time.perf_counter()
        instance = app.start(REFERENCE_KEY, actor, f"BENCH-{index}", dict(START_DATA))
        starts.append(time.perf_counter() - began)
        while True:
            tasks = open_tasks(app, instance.id)
            if not tasks:
                return
            command = commands.CompleteTask(tasks[0], {"note": "ok"})
            if profile is not None:
                profile.enable()
            if counter is not None:
                counter.on = index >= 0
            cpu, began = time.process_time(), time.perf_counter()
            app.runner.execute(command, actor)
            steps.append(time.perf_counter() - began)
            if step_cpus is not None and index >= 0:
                step_cpus.append(time.process_time() - cpu)
            if counter is not None:
                counter.on = False
            if profile is not None:
                profile.disable()

    for index in range(warmup):
        one(-index - 1, [], [])
    starts: list[float] = []
    steps: list[float] = []
    began = time.perf_counter()
    for index in range(instances):
        one(index, starts, steps)
    return instances / (time.perf_counter() - began), starts, steps


class StatementCounter:
    """Counts the SQL statements the engine sends, by verb and table, while switched on, and
    the time spent inside the driver's execute (round trip and server work, no Python above
    the driver), so a step's time splits into database and library."""

    def __init__(self, engine: Any) -> None:
        self.on = False
        self.kinds: Counter[str] = Counter()
        self.in_driver = 0.0
        self.round_trips = 0
        self._began = 0.0
        self._in_batch = False
        event.listen(engine, "before_cursor_execute", self._seen)
        event.listen(engine, "after_cursor_execute", self._done)
        event.listen(engine, "commit", self._committed)
        # PostgreSQL: libpq's protocol trace of the connections the steps use, for the exact
        # count of round trips and statements (BEGIN, COMMIT and server calls included)
        self._trace = tempfile.TemporaryFile("w+")  # noqa: SIM115 (lives as long as the run)
        event.listen(engine, "checkout", self._checkout)
        event.listen(engine, "checkin", self._checkin)

    def _checkout(self, dbapi_connection: Any, *_args: Any) -> None:
        pgconn = getattr(dbapi_connection, "pgconn", None)
        if self.on and pgconn is not None:
            pgconn.trace(self._trace.fileno())
            pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

    def _checkin(self, dbapi_connection: Any, *_args: Any) -> None:
        pgconn = getattr(dbapi_connection, "pgconn", None)
        if pgconn is not None:
            pgconn.untrace()  # flushes what was traced

    def protocol(self) -> tuple[int, int]:
        """(round trips, statements) in the trace: each ReadyForQuery the server sent ends a
        round trip (a Sync or a simple Query the client waited for); each Execute or simple
        Query the client sent is a statement."""
        self._trace.seek(0)
        trips = statements = 0
        for line in self._trace:
            sender, _length, message = [*line.rstrip("\n").split("\t"), "", ""][:3]
            kind = message.split(" ", 1)[0]
            if sender == "B" and kind == "ReadyForQuery":
                trips += 1
            elif sender == "F" and kind in ("Execute", "Query"):
                statements += 1
        return trips, statements

    def _committed(self, *_args: Any) -> None:
        self._in_batch = False

    def _done(self, *_args: Any) -> None:
        if self.on:
            self.in_driver += time.perf_counter() - self._began

    def _seen(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not self.on:
            return
        self._began = time.perf_counter()
        # statements sent in a psycopg pipeline (engine/store/write_batch.py) share one trip
        pgconn = getattr(conn.connection.driver_connection, "pgconn", None)
        pipelined = bool(pgconn is not None and pgconn.pipeline_status)
        if not (pipelined and self._in_batch):
            self.round_trips += 1
        self._in_batch = pipelined
        words = statement.split(None, 1)
        verb = words[0].upper() if words else "?"
        table = re.search(r"(?:FROM|INTO|UPDATE)\s+\"?(\w+)", statement, re.IGNORECASE)
        self.kinds[f"{verb} {table.group(1) if table else ''}".strip()] += 1


def document_size(app: Any) -> int:
    from engine.store.models import Instance

    with app.database.read_session() as session:
        sizes = list(session.scalars(select(Instance.document).limit(50)))
    return max(len(s) for s in sizes) if sizes else 0


def run_on(kind: str, instances: int, raw_step: float, profile: str | None, pre_ping: bool) -> None:
    url = database_url(kind, "persistence")
    app = make_app(url, pool_pre_ping=True) if pre_ping else make_app(url)
    from engine.store.models import DefinitionVersion

    with tempfile.TemporaryDirectory() as folder:
        deploy(app, Path(folder), REFERENCE_KEY, reference_bpmn())
    add_clerks(app, ["li"])
    actor = app.actor("li")
    with app.database.read_session() as session:
        version_id = session.scalars(select(DefinitionVersion.id)).one()

    spec_steps = bench_engine_spec(app, version_id, instances, documents=False)
    doc_steps = bench_engine_spec(app, version_id, instances, documents=True)
    commit_cpus: list[float] = []
    commits = bench_commit(app, cpus=commit_cpus)
    floor: list[float] = []
    floor_cpus: list[float] = []
    if kind == "postgresql":
        floor, floor_cpus = bench_floor(app, version_id, instances)
    profiler = cProfile.Profile() if profile else None
    step_cpus: list[float] = []
    rate, starts, steps = bench_engine(app, actor, instances, profiler, step_cpus=step_cpus)
    # counted in a pass of its own: while anyone listens to statements, the batched writes go
    # through SQLAlchemy instead of the driver (engine/store/driver_sql.py), which is slower
    counter = StatementCounter(app.database.engine)
    _, _, counted = bench_engine(app, actor, COUNTED_INSTANCES, None, counter)

    commit = statistics.median(commits)
    step = statistics.median(steps)
    budget = 2 * raw_step + commit
    print(f"\n== {describe_url(url)} ==")
    print(
        f"bare commit (update 1 row):        {summary_ms(commits)}; this process's CPU "
        f"{statistics.median(commit_cpus) * 1000:.2f} ms (median)"
    )
    print(f"engine spec in memory, step:       {summary_ms(spec_steps)}")
    print(f"  + load/prune/dump document:      {summary_ms(doc_steps)}")
    if floor:
        print(
            f"floor: document read + write, psycopg alone: {summary_ms(floor)}; this "
            f"process's CPU {statistics.median(floor_cpus) * 1000:.2f} ms (median)"
        )
    print(f"engine start (new instance):       {summary_ms(starts)}")
    print(
        f"engine step (complete a task):     {summary_ms(steps)}; this process's CPU "
        f"{statistics.median(step_cpus) * 1000:.2f} ms (median)"
    )
    print(f"engine instances/s (10 steps each): {rate:.1f}")
    print(f"largest instance document:         {document_size(app)} bytes")
    print(
        f"ratio engine step / raw step:      {step / raw_step:.1f}x "
        f"(median {step * 1000:.2f} ms vs {raw_step * 1000:.3f} ms)"
    )
    print(
        f"goal: step <= 2 x raw + 1 commit = {budget * 1000:.2f} ms; "
        f"measured {step * 1000:.2f} ms = {step / budget:.2f}x the budget: {verdict(step, budget)}"
    )
    if floor:
        least = statistics.median(floor)
        print(
            f"the floor (a SpiffWorkflow step, its document read and written back, nothing "
            f"else): {least * 1000:.2f} ms = {least / budget:.2f}x the budget; the engine's step "
            f"is {step / least:.2f}x the floor"
        )
        print(
            "waiting (wall - this process's CPU, medians): "
            f"floor {(least - statistics.median(floor_cpus)) * 1000:.2f} ms, "
            f"engine step {(step - statistics.median(step_cpus)) * 1000:.2f} ms"
        )
    print(
        "where a step goes (medians): "
        f"spiff+engine spec {statistics.median(spec_steps) * 1000:.2f} ms, "
        f"document load/dump {(statistics.median(doc_steps) - statistics.median(spec_steps)) * 1000:.2f} ms, "  # noqa: E501
        f"transaction/projections/commit {(step - statistics.median(doc_steps)) * 1000:.2f} ms"
    )
    per_step = {k: v / len(counted) for k, v in counter.kinds.most_common()}
    print(f"counted in an untimed pass of {COUNTED_INSTANCES} instances:")
    print(
        f"SQL statements per step: {sum(per_step.values()):.1f} ("
        + ", ".join(f"{k} {v:.1f}" for k, v in per_step.items())
        + ")"
    )
    trips, sent = counter.protocol()
    if trips:
        print(
            f"round trips per step: {trips / len(counted):.1f}, statements sent "
            f"{sent / len(counted):.1f} (libpq's protocol trace: BEGIN, COMMIT and the fence's "
            "server call included)"
        )
    else:
        print(
            f"round trips per step: {counter.round_trips / len(counted):.1f} "
            "(statements sent together count once; the commit not included)"
        )
    print(
        f"inside the driver's execute per step: {counter.in_driver / len(counted) * 1000:.2f} ms "
        "(round trips and server work; the commit not included; in this pass the batched "
        "writes go through SQLAlchemy, which calls the listeners that count them)"
    )
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(profile or "cumulative").print_stats(35)
        print(f"\n-- profile of the engine steps on {describe_url(url)} ({profile}) --")
        print(out.getvalue())
    print(f"at the end: {load_note()}")
    app.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument(
        "--profile",
        nargs="?",
        const="cumulative",
        choices=("cumulative", "tottime"),
        help="cProfile the engine steps, sorted by cumulative (default) or own time",
    )
    parser.add_argument(
        "--pre-ping",
        dest="pre_ping",
        action="store_true",
        help="PostgreSQL: ping every connection at checkout (SQLAlchemy's pool_pre_ping, "
        "the default before pings after idling only), to compare",
    )
    args = parser.parse_args()
    print(f"bench.persistence on {machine()}; {args.instances} instances x {STEPS} steps")
    raw_rate, raw_steps = bench_raw(args.instances)
    raw_step = statistics.median(raw_steps)
    print(f"raw SpiffWorkflow step (baseline):  {summary_ms(raw_steps)}")
    print(f"raw SpiffWorkflow instances/s:      {raw_rate:.1f}")
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    for kind in kinds:
        run_on(kind, args.instances, raw_step, args.profile, args.pre_ping)


if __name__ == "__main__":
    main()
