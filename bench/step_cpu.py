"""Where a persisted step's time goes on PostgreSQL: this process's CPU, the server
backend's CPU, and waiting. The same steps as `bench.persistence` (the reference flow, one
task completion with the engine steps it triggers), one thread, no statement listeners.

    .venv/bin/python -m bench.step_cpu [--instances 100]

CPU time is noisy on a shared machine; for a figure that is not, count instructions:

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python -m bench.step_cpu --instances 10     # and again with 20

The difference between the two totals valgrind prints, divided by 10, is the instructions
this process spends on one case (a start, ten completions and the reads of the open tasks).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import (
    REFERENCE_KEY,
    add_clerks,
    backend_pids,
    backends_cpu_s,
    database_url,
    deploy,
    load_note,
    machine,
    make_app,
    reference_bpmn,
)
from bench.persistence import bench_engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=100)
    args = parser.parse_args()
    print(f"bench.step_cpu on {machine()}; {args.instances} instances x 10 steps")
    url = database_url("postgresql", "step_cpu")
    app = make_app(url)
    with tempfile.TemporaryDirectory() as folder:
        deploy(app, Path(folder), REFERENCE_KEY, reference_bpmn())
    add_clerks(app, ["li"])
    actor = app.actor("li")
    bench_engine(app, actor, 0, None)  # its ten warm-up cases: specs cached, SQL prepared
    pids = backend_pids(url)
    cpus: list[float] = []
    server, mine, began = backends_cpu_s(pids), time.process_time(), time.perf_counter()
    _, _, walls = bench_engine(app, actor, args.instances, None, warmup=0, step_cpus=cpus)
    server = backends_cpu_s(pids) - server
    mine, elapsed = time.process_time() - mine, time.perf_counter() - began
    steps = len(walls)
    print(
        f"a step (median of {steps}): {statistics.median(walls) * 1000:.2f} ms, of which this "
        f"process's CPU {statistics.median(cpus) * 1000:.2f} ms"
    )
    print(
        f"per step over the whole loop (starts and open-task reads included): elapsed "
        f"{elapsed / steps * 1000:.2f} ms, this process's CPU {mine / steps * 1000:.2f} ms, "
        f"server CPU {server / steps * 1000:.2f} ms ({len(pids)} backend(s))"
    )
    print(f"at the end: {load_note()}")
    app.dispose()


if __name__ == "__main__":
    main()
