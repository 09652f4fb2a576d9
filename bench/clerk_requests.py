"""Issue 12b's detail: the server CPU of what a clerk's requests run, in process, without HTTP,
one thread, on PostgreSQL: claim-next, a claim, the 50-row worklist read and a completion,
each next to a bare one-SELECT transaction measured in the same run (the floor every request
pays). CPU time (`time.process_time`), not wall time: the end-to-end run is bound by CPU.

    .venv/bin/python -m bench.clerk_requests [--rounds 300] [--db postgresql|sqlite]

The two clerk styles of `bench.e2e` cost, per completed task: "next" = claim-next +
completion; "browse" = worklist + claim + completion (plus its conflicts).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import (
    REFERENCE_KEY,
    add_clerks,
    database_url,
    deploy,
    describe_url,
    load_note,
    machine,
    make_app,
    reference_bpmn,
)

WARMUP = 30


def cpu_ms(call: Callable[[], Any]) -> tuple[float, Any]:
    began = time.process_time()
    result = call()
    return (time.process_time() - began) * 1000, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--db", choices=("postgresql", "sqlite"), default="postgresql")
    args = parser.parse_args()

    from engine.runtime import commands, queries

    url = database_url(args.db, "clerk_requests")
    print(f"bench.clerk_requests on {machine()}; {describe_url(url)}; {args.rounds} rounds")
    app = make_app(url)
    with tempfile.TemporaryDirectory() as folder:
        deploy(app, Path(folder), REFERENCE_KEY, reference_bpmn())
    add_clerks(app, ["clerk_a"])
    clerk = app.actor("clerk_a")
    for _ in range(100):  # a queue of 100 cases; each completion puts the case's next task in it
        app.start(REFERENCE_KEY, clerk, None, {"decision": "accept"}, None)
    ranges = tuple(queries.queue_ranges(clerk))

    def bare() -> None:
        with app.database.read_session() as session:
            session.execute(text("SELECT 1")).scalar()

    def worklist() -> list[Any]:
        with app.database.read_session() as session:
            return queries.list_tasks(session, clerk, "group", limit=50)

    figures: dict[str, list[float]] = {
        "bare one-SELECT transaction (baseline)": [],
        "claim-next": [],
        "worklist read, 50 rows": [],
        "claim": [],
        "completion": [],
    }
    names = list(figures)
    for round_ in range(args.rounds + WARMUP):
        seen: dict[str, float] = {}
        seen[names[0]], _ = cpu_ms(bare)
        if round_ % 2:
            seen[names[1]], row = cpu_ms(
                lambda: app.runner.execute(commands.ClaimNextTask(ranges=ranges), clerk)
            )
        else:
            seen[names[2]], rows = cpu_ms(worklist)
            task = next(r for r in rows if r.assignee is None)
            seen[names[3]], row = cpu_ms(
                lambda task_id=task.id: app.runner.execute(commands.ClaimTask(task_id), clerk)
            )
        seen[names[4]], _ = cpu_ms(
            lambda task_id=row.id: app.runner.execute(commands.CompleteTask(task_id, {}), clerk)
        )
        if round_ >= WARMUP:
            for name, value in seen.items():
                figures[name].append(value)

    medians = {name: statistics.median(values) for name, values in figures.items()}
    floor = medians[names[0]]
    for name, value in medians.items():
        print(f"{name + ':':40} {value:6.2f} ms CPU (median), {value / floor:5.1f}x the baseline")
    next_style = medians["claim-next"] + medians["completion"]
    browse_style = medians["worklist read, 50 rows"] + medians["claim"] + medians["completion"]
    print(
        f"per completed task: 'next' {next_style:.2f} ms, 'browse' {browse_style:.2f} ms "
        f"(conflicts not counted): {browse_style / next_style:.2f}x"
    )
    print(f"at the end: {load_note()}")
    app.dispose()


if __name__ == "__main__":
    main()
