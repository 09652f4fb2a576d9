"""Issue 12d: the read queries at scale on PostgreSQL. 1M instances and 3M human-task rows
(plus the incidents, jobs, timers and subscriptions a live centre has), generated with bulk
SQL into the `bench` database after the project's migrations created the schema; then the
engine's own query functions are timed: a department's worklist, the pick of its next task
(claim-next), the stuck detector, the business-key searches and the case list. Goals:
worklist p95 < 20 ms, stuck query p95 < 100 ms.

    .venv/bin/python -m bench.queries [--instances 1000000] [--runs 100] [--reuse] [--explain]
        [--only stuck|next|worklist|business|instances]

`--reuse` skips the generation and times the rows already in `bench`; `--explain` prints
PostgreSQL's EXPLAIN ANALYZE of every statement one call sends, to see where time goes.
Every timed statement runs under a 30 s statement_timeout; one that hits it is reported as
FAILED with the error, the run goes on. `--only` times (and explains) only those queries:
the stuck detector, the next-task pick, the worklists, the business-key searches or the
newest cases pages.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text

from bench.common import (
    PG_SERVER,
    REFERENCE_KEY,
    deploy,
    fresh_postgres,
    load_note,
    machine,
    make_app,
    percentile,
    reference_bpmn,
    summary_ms,
    verdict,
)

DATABASE = "bench"
KEYS = ("window_service", "one_thing", "joint_review", "rectification", REFERENCE_KEY)
DOCUMENT_BYTES = 1200
"""About the size of a reference-flow document (bench.persistence prints it)."""

# Status mix of a centre that has run for a year: most cases ended, a quarter on a desk.
GENERATE = [
    (
        "instances",
        """
        INSERT INTO instances (id, definition_version_id, definition_key, definition_version,
            business_key, status, version, document, variables, steps_executed, started_by,
            started_at, updated_at, ended_at, case_status)
        SELECT md5('i' || g)::uuid::text, :version_id, (CAST(:keys AS text[]))[1 + g % 5], 1,
            '360781000000' || lpad(g::text, 12, '0'),
            CASE WHEN g % 100 < 70 THEN 'completed' WHEN g % 100 < 95 THEN 'running'
                 WHEN g % 100 < 98 THEN 'waiting' ELSE 'error' END,
            11, :document, '{"applicant_name": "张三", "phone": "13912345678"}'::json, 20,
            'front', s.started, s.started + (now() - s.started) * random(),
            CASE WHEN g % 100 < 70 THEN s.started + interval '8 days' END, 1
        FROM generate_series(1, :n) g,
             LATERAL (SELECT now() - interval '365 days' * random() * (CASE WHEN g % 100 < 70
                 THEN 1 ELSE 0.1 END) AS started) s
        """,
    ),
    (
        "human_tasks",
        """
        WITH depts AS (SELECT array_agg(code ORDER BY code) AS codes FROM departments),
        cases AS (
            SELECT i.id, i.status, i.definition_key, i.business_key, i.started_at,
                d.codes[1 + floor(array_length(d.codes, 1)
                    * power(((hashtext(i.id) & 65535) / 65536.0), 2))::int] AS dept
            FROM instances i, depts d
        )
        INSERT INTO human_tasks (id, instance_id, element_id, name, definition_key, business_key,
            state, assignee, candidate_groups, candidate_users, form_key, due_at, priority,
            created_at, claimed_at, completed_at, completed_by)
        SELECT md5(c.id || k)::uuid::text, c.id, 't0' || k, 'step t0' || k, c.definition_key,
            c.business_key, t.state,
            CASE WHEN t.state = 'completed' OR c.id < '3' THEN 'clerk_' || c.dept END,
            json_build_array(c.dept), '[]'::json, NULL,
            CASE WHEN t.state = 'open' THEN now() + interval '1 day' * (20 * random() - 1)
                ELSE c.started_at + interval '1 day' * (3 * k + 10 * random()) END,
            CASE WHEN k = 3 THEN 60 ELSE 50 END,
            c.started_at + interval '1 day' * (k - 1),
            CASE WHEN t.state = 'completed' THEN c.started_at + interval '1 day' * k END,
            CASE WHEN t.state = 'completed' THEN c.started_at + interval '1 day' * k END,
            CASE WHEN t.state = 'completed' THEN 'clerk_' || c.dept END
        FROM cases c CROSS JOIN generate_series(1, 3) k,
            LATERAL (SELECT CASE WHEN c.status = 'running' AND k = 3 THEN 'open'
                ELSE 'completed' END AS state) t
        """,
    ),
    (
        "task_candidates",
        """
        INSERT INTO task_candidates (task_id, kind, value, due_at, priority, created_at,
            claimed, name, business_key)
        SELECT id, 'group', candidate_groups ->> 0, due_at, priority, created_at,
            assignee IS NOT NULL, name, business_key
        FROM human_tasks WHERE state = 'open'
        """,
    ),
    (
        "incidents",
        """
        INSERT INTO incidents (instance_id, task_id, element_id, kind, message, created_at)
        SELECT id, NULL, 'notify', CASE WHEN hashtext(id) % 4 = 0 THEN 'job' ELSE 'failed' END,
            'a handler failed (generated)', updated_at
        FROM instances WHERE status = 'error'
        """,
    ),
    (
        "jobs",
        """
        INSERT INTO jobs (id, instance_id, task_id, element_id, topic, state, payload, attempts,
            max_attempts, next_run_at, created_at, updated_at, completed_at)
        SELECT md5('j' || id)::uuid::text, id, md5('jt' || id)::uuid::text, 'notify',
            'notify.sms', CASE WHEN status = 'waiting' THEN 'pending' ELSE 'completed' END,
            '{}'::json, 1, 3, updated_at, updated_at, updated_at,
            CASE WHEN status = 'waiting' THEN NULL ELSE updated_at END
        FROM instances WHERE status = 'waiting' OR hashtext(id) % 3 = 0
        """,
    ),
    (
        "timers",
        """
        INSERT INTO timers (instance_id, task_id, element_id, due_at, state, created_at)
        SELECT id, md5('tm' || id)::uuid::text, 'reminder',
            now() + interval '1 day' * (random() * 10 - 0.2), 'waiting', updated_at
        FROM instances WHERE status = 'running' AND hashtext(id) % 10 = 0
        """,
    ),
    (
        "message_subscriptions",
        """
        INSERT INTO message_subscriptions (instance_id, task_id, element_id, message_name,
            created_at)
        SELECT id, md5('ms' || id)::uuid::text, 'wait_payment', 'payment.received', updated_at
        FROM instances WHERE status = 'waiting' AND hashtext(id) % 2 = 0
        """,
    ),
]


def generate(app: Any, instances: int) -> None:
    """Fill the schema with bulk INSERT ... SELECT; prints the time each table took."""
    from engine.store.models import DefinitionVersion

    with app.database.read_session() as session:
        version_id = session.scalars(select(DefinitionVersion.id)).first()
    params = {
        "version_id": version_id,
        "keys": list(KEYS),
        "n": instances,
        "document": '{"format": 1, "pad": "' + "x" * (DOCUMENT_BYTES - 30) + '"}',
    }
    began = time.perf_counter()
    with app.database.engine.begin() as connection:
        connection.execute(text("SET LOCAL synchronous_commit = off"))
        connection.execute(text("SET LOCAL maintenance_work_mem = '256MB'"))
        connection.execute(text("SELECT setseed(0.12)"))
        for table, sql in GENERATE:
            step = time.perf_counter()
            result = connection.execute(text(sql), params)
            print(f"  {table}: {result.rowcount} rows in {time.perf_counter() - step:.1f} s")
    step = time.perf_counter()
    with app.database.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        connection.execute(text("VACUUM ANALYZE"))
    print(f"  vacuum analyze: {time.perf_counter() - step:.1f} s")
    print(f"generated in {time.perf_counter() - began:.1f} s")


def table_sizes(app: Any) -> None:
    with app.database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT relname, n_live_tup, pg_size_pretty(pg_total_relation_size(relid)) "
                "FROM pg_stat_user_tables WHERE n_live_tup > 1000 ORDER BY n_live_tup DESC"
            )
        )
        for name, count, size in rows:
            print(f"  {name}: {count} rows, {size} with indexes")


@contextmanager
def capture(app: Any) -> Iterator[list[tuple[str, Any]]]:
    """The statements sent to the database while the block runs."""
    seen: list[tuple[str, Any]] = []

    def listener(_c: Any, _cur: Any, statement: str, parameters: Any, *_a: Any) -> None:
        seen.append((statement, parameters))

    event.listen(app.database.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(app.database.engine, "before_cursor_execute", listener)


def explain(app: Any, name: str, call: Callable[[Any], Any]) -> None:
    """EXPLAIN ANALYZE every statement one call of `call` sends."""
    print(f"\n-- EXPLAIN ANALYZE: {name} --")
    with app.database.read_session() as session, capture(app) as seen:
        session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_S * 1000}"))
        try:
            call(session)
        except Exception as exc:
            print(f"(the call failed: {type(exc).__name__}; explaining what it sent before)")
            seen.pop()
    raw = app.database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_S * 1000}")
        for statement, parameters in seen:
            if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                continue
            print(" ".join(statement.split())[:160])
            try:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters)
            except Exception as exc:
                raw.rollback()
                cursor.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_S * 1000}")
                cursor.execute("EXPLAIN " + statement, parameters)
                print(f"    (EXPLAIN ANALYZE failed: {str(exc).splitlines()[0]}; plan only)")
            plan = [row[0] for row in cursor.fetchall()]
            for line in plan:
                print("   ", line)
        raw.rollback()
    finally:
        raw.close()


STATEMENT_TIMEOUT_S = 30
"""A statement that runs longer is cancelled and the query reported as failed, so one
pathological plan cannot hold the run (and the machine) for hours."""


def time_query(
    app: Any, runs: int, call: Callable[[Any, int], Any], budget_s: float = 30.0
) -> list[float]:
    """Each run in its own read transaction, as an API request has; 3 warm-up runs; stops
    early once the measured runs took `budget_s` (at least 5 runs are kept)."""
    times: list[float] = []
    for run in range(runs + 3):
        with app.database.read_session() as session:
            session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_S * 1000}"))
            began = time.perf_counter()
            call(session, run)
            if run >= 3:
                times.append(time.perf_counter() - began)
        if len(times) >= 5 and sum(times) > budget_s:
            break
    return times


def departments_by_open_tasks(app: Any) -> list[tuple[str, int]]:
    with app.database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT value, count(*) FROM task_candidates WHERE kind = 'group' "
                "GROUP BY value ORDER BY count(*) DESC"
            )
        )
        return [(str(v), int(c)) for v, c in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="time the rows already there")
    parser.add_argument("--explain", action="store_true")
    parser.add_argument(
        "--only",
        choices=("stuck", "next", "worklist", "business", "instances"),
        help="time only these queries",
    )
    args = parser.parse_args()
    print(f"bench.queries on {machine()}; PostgreSQL database {DATABASE!r}")

    from engine.accounts.actor import Actor
    from engine.ops.stuck import REASONS, Thresholds, detect
    from engine.runtime import clock
    from engine.runtime.queries import (
        list_instances,
        list_tasks,
        next_unclaimed_task,
        queue_ranges,
    )

    if args.reuse:
        app = make_app(f"{PG_SERVER}/{DATABASE}")
    else:
        app = make_app(fresh_postgres(DATABASE))
        with tempfile.TemporaryDirectory() as folder:
            deploy(app, Path(folder), REFERENCE_KEY, reference_bpmn())
        print(f"generating {args.instances} instances, {3 * args.instances} task rows ...")
        generate(app, args.instances)
    table_sizes(app)

    departments = departments_by_open_tasks(app)
    biggest, biggest_open = departments[0]
    typical, typical_open = departments[len(departments) // 2]
    clerk = Actor("clerk_bench", frozenset({"clerk"}), frozenset({biggest}))
    clerk_typical = Actor("clerk_typical", frozenset({"clerk"}), frozenset({typical}))
    ops = Actor("ops_bench", frozenset({"ops"}), frozenset())
    smallest = departments[-1][0]
    # the case list of clerks who see many of the newest cases and of clerks who see few
    case_list_clerks = {
        f"clerk_{biggest}, who did every task of {biggest}": Actor(
            f"clerk_{biggest}", frozenset({"clerk"}), frozenset({biggest})
        ),
        f"clerk_{smallest}, who did every task of {smallest} (smallest queue)": Actor(
            f"clerk_{smallest}", frozenset({"clerk"}), frozenset({smallest})
        ),
        "the front desk, which started every case": Actor(
            "front", frozenset({"clerk"}), frozenset()
        ),
        "a clerk who sees no case": Actor("clerk_none", frozenset({"clerk"}), frozenset({"none"})),
    }
    calendar = app.services.calendars.get()
    thresholds = Thresholds.from_settings(app.settings)
    with app.database.engine.connect() as connection:
        total = int(connection.execute(text("SELECT count(*) FROM instances")).scalar() or 0)
    rng = random.Random(12)
    keys = ["360781000000" + str(rng.randint(1, total)).zfill(12) for _ in range(args.runs + 5)]

    cases: list[tuple[str, Callable[[Any, int], Any], float | None]] = [
        (
            f"worklist, largest department {biggest} ({biggest_open} open tasks)",
            lambda s, _r: list_tasks(s, clerk, "group"),
            0.020,
        ),
        (
            f"worklist, median department {typical} ({typical_open} open tasks)",
            lambda s, _r: list_tasks(s, clerk_typical, "group"),
            0.020,
        ),
        (
            f"next task pick (POST /api/tasks/claim-next), largest department {biggest}",
            lambda s, _r: s.execute(*next_unclaimed_task(queue_ranges(clerk))).first(),
            None,
        ),
        (
            "stuck detector, all reasons (limit 500)",
            lambda s, _r: detect(s, clock.now(), calendar, thresholds),
            0.100,
        ),
        *(
            (
                f"stuck detector, reason {reason} alone",
                lambda s, _r, reason=reason: detect(
                    s, clock.now(), calendar, thresholds, reason=reason
                ),
                None,
            )
            for reason in REASONS
        ),
        (
            "business key, exact (GET /api/instances?business_key=, ops)",
            lambda s, r: list_instances(s, ops, business_key=keys[r]),
            None,
        ),
        (
            "business key, exact, as a clerk (visibility check)",
            lambda s, r: list_instances(s, clerk, business_key=keys[r]),
            None,
        ),
        (
            "business key, substring in the worklist (GET /api/tasks?q=)",
            lambda s, r: list_tasks(s, clerk, "group", q=keys[r][-8:]),
            None,
        ),
        (
            "business key, substring: a text in every task's name (GET /api/tasks?q=step)",
            lambda s, _r: list_tasks(s, clerk, "group", q="step"),
            None,
        ),
        # ops search every task, not a queue: nothing serves a substring over all task rows
        (
            "business key, substring in all open tasks, ops (GET /api/tasks?scope=all&q=)",
            lambda s, r: list_tasks(s, ops, "all", q=keys[r][-8:]),
            None,
        ),
        (
            "business key, substring in all tasks of any state, ops (...&state=any)",
            lambda s, r: list_tasks(s, ops, "all", state="any", q=keys[r][-8:]),
            None,
        ),
        ("instances, newest page (ops)", lambda s, _r: list_instances(s, ops), None),
        (
            "instances, newest page, as a clerk (visibility check)",
            lambda s, _r: list_instances(s, clerk),
            None,
        ),
        *(
            (f"instances, newest page, as {who}", lambda s, _r, a=actor: list_instances(s, a), None)
            for who, actor in case_list_clerks.items()
        ),
    ]
    if args.only:
        cases = [c for c in cases if c[0].startswith(args.only)]
    results: list[tuple[str, list[float], float | None]] = []
    for name, call, goal in cases:
        runs = max(10, args.runs // 5) if name.startswith("stuck") else args.runs
        try:
            times = time_query(app, runs, call)
        except Exception as exc:  # a query that fails at this size is a finding, not a crash
            first = str(exc).splitlines()[0][:300]
            print(f"{name}: FAILED ({type(exc).__name__}: {first})", flush=True)
            if goal is not None:
                results.append((name, [float("inf")], goal))
            continue
        results.append((name, times, goal))
        line = f"{name}: {summary_ms(times)}"
        if goal is not None:
            p95 = percentile(times, 95)
            line += (
                f"; goal p95 < {goal * 1000:.0f} ms: {p95 / goal:.2f}x the goal, "
                f"{verdict(p95, goal)}"
            )
        print(line, flush=True)
    with app.database.engine.connect() as connection:
        overdue = connection.execute(
            text(
                "SELECT count(*) FROM human_tasks WHERE state = 'open' AND assignee IS NULL "
                "AND due_at < now()"
            )
        ).scalar()
    print(f"open unclaimed overdue tasks in the data: {overdue}")
    # what --explain shows, by the --only group each belongs to
    explained: list[tuple[str, str, Callable[[Any], Any]]] = [
        ("worklist", "worklist", lambda s: list_tasks(s, clerk, "group")),
        (
            "next",
            "next task pick",
            lambda s: s.execute(*next_unclaimed_task(queue_ranges(clerk))).first(),
        ),
        ("stuck", "stuck", lambda s: detect(s, clock.now(), calendar, thresholds)),
        (
            "business",
            "business key as clerk",
            lambda s: list_instances(s, clerk, business_key=keys[0]),
        ),
        ("business", "q search", lambda s: list_tasks(s, clerk, "group", q=keys[0][-8:])),
        ("instances", "newest cases as clerk", lambda s: list_instances(s, clerk)),
    ]
    for group, name, call in explained:
        if args.explain and args.only in (None, group):
            explain(app, name, call)
    print(
        "\nsummary (p95): "
        + "; ".join(f"{n[:48]} {percentile(t, 95) * 1000:.1f} ms" for n, t, _ in results)
    )
    print(f"at the end: {load_note()}")
    app.dispose()


if __name__ == "__main__":
    main()
