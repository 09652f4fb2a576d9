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
    backend_pids,
    backends_cpu_s,
    database_url,
    deploy,
    describe_url,
    load_note,
    machine,
    make_app,
    reference_bpmn,
)

WARMUP = 30


class Meter:
    """This process's CPU per call, and on PostgreSQL the server backends' CPU summed per kind
    of call (their /proc figures move in 10 ms ticks: only a sum over many calls means
    anything)."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.server_s: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def cpu_ms(self, name: str, call: Callable[[], Any]) -> tuple[float, Any]:
        server = backends_cpu_s(self.pids)
        began = time.process_time()
        result = call()
        mine = (time.process_time() - began) * 1000
        self.server_s[name] = self.server_s.get(name, 0.0) + backends_cpu_s(self.pids) - server
        self.calls[name] = self.calls.get(name, 0) + 1
        return mine, result

    def server_ms(self, name: str) -> float | None:
        return self.server_s[name] / self.calls[name] * 1000 if self.pids else None


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
    pids = backend_pids(url) if args.db == "postgresql" else []

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
    meter = Meter(pids)
    for round_ in range(args.rounds + WARMUP):
        if round_ == WARMUP:
            meter = Meter(pids)  # the server's figures from the measured rounds only
        seen: dict[str, float] = {}
        seen[names[0]], _ = meter.cpu_ms(names[0], bare)
        if round_ % 2:
            seen[names[1]], row = meter.cpu_ms(
                names[1], lambda: app.runner.execute(commands.ClaimNextTask(ranges=ranges), clerk)
            )
        else:
            seen[names[2]], rows = meter.cpu_ms(names[2], worklist)
            task = next(r for r in rows if r.assignee is None)
            seen[names[3]], row = meter.cpu_ms(
                names[3],
                lambda task_id=task.id: app.runner.execute(commands.ClaimTask(task_id), clerk),
            )
        seen[names[4]], _ = meter.cpu_ms(
            names[4],
            lambda task_id=row.id: app.runner.execute(commands.CompleteTask(task_id, {}), clerk),
        )
        if round_ >= WARMUP:
            for name, value in seen.items():
                figures[name].append(value)

    medians = {name: statistics.median(values) for name, values in figures.items()}
    floor = medians[names[0]]
    for name, value in medians.items():
        server = meter.server_ms(name)
        on_server = "" if server is None else f"; server {server:5.2f} ms CPU (mean)"
        print(
            f"{name + ':':40} {value:6.2f} ms CPU (median), {value / floor:5.1f}x the baseline"
            + on_server
        )
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
