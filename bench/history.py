"""Issue 12c: does a long-lived case get slower? One instance whose user task loops back
through an exclusive gateway 1,000 times; the step time near iteration 1,000 against the step
time near iteration 10 (goal: at most 2x), and the stored document's size as it grows.

    .venv/bin/python -m bench.history [--db sqlite|postgresql|both] [--iterations 1000]

Raw SpiffWorkflow runs the same loop in memory first, without the engine's history pruning,
to show what the task tree would cost if nothing were pruned. It runs with the engine's guards
for SpiffWorkflow 3.2.0 applied (engine.runtime.spiff_patches): unguarded, its task iterator
stops at depth 1000 and the loop finds no ready task after about 330 iterations.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import func, select

from bench.common import (
    LOOP_KEY,
    add_clerks,
    database_url,
    deploy,
    describe_url,
    load_note,
    loop_bpmn,
    machine,
    make_app,
    open_tasks,
    verdict,
)

WINDOW = 10
"""Iterations averaged (by median) around each point: 6-15 against the last 10."""


def windows(times: list[float]) -> tuple[float, float]:
    """Median step time around iteration 10 and over the last WINDOW iterations."""
    early = times[5 : 5 + WINDOW]
    late = times[-WINDOW:]
    return statistics.median(early), statistics.median(late)


def raw_loop(iterations: int) -> tuple[list[float], int]:
    """Raw SpiffWorkflow, nothing pruned: step times and the final task count."""
    import engine  # noqa: F401  (applies the depth guard, see the module docstring)

    parser = CamundaParser()
    parser.add_bpmn_str(loop_bpmn().encode("utf-8"))
    workflow = BpmnWorkflow(parser.get_spec(LOOP_KEY), parser.get_subprocess_specs(LOOP_KEY))
    workflow.task_tree.data["done"] = False
    workflow.do_engine_steps()
    times: list[float] = []
    for _ in range(iterations):
        [task] = workflow.get_tasks(state=TaskState.READY, manual=True)
        began = time.perf_counter()
        task.run()
        workflow.do_engine_steps()
        times.append(time.perf_counter() - began)
    return times, len(workflow.tasks)


def engine_loop(kind: str, iterations: int) -> None:
    from engine.runtime import commands
    from engine.store.models import AuditEvent, Instance

    url = database_url(kind, "history")
    app = make_app(url)
    with tempfile.TemporaryDirectory() as folder:
        deploy(app, Path(folder), LOOP_KEY, loop_bpmn())
    add_clerks(app, ["li"])
    actor = app.actor("li")
    instance = app.start(LOOP_KEY, actor, "LOOP-1", {"done": False})

    def stored() -> tuple[int, int]:
        with app.database.read_session() as session:
            row = session.get(Instance, instance.id)
            assert row is not None
            audit = session.scalar(
                select(func.count()).where(AuditEvent.instance_id == instance.id)
            )
            return len(row.document), int(audit or 0)

    checkpoints = {10, 100, 500, iterations}
    sizes: dict[int, tuple[int, int]] = {}
    times: list[float] = []
    for iteration in range(1, iterations + 1):
        [task_id] = open_tasks(app, instance.id)
        command = commands.CompleteTask(task_id, {"done": False, "round": iteration})
        began = time.perf_counter()
        app.runner.execute(command, actor)
        times.append(time.perf_counter() - began)
        if iteration in checkpoints:
            sizes[iteration] = stored()
    early, late = windows(times)
    print(f"\n== engine on {describe_url(url)} ==")
    for iteration in sorted(sizes):
        document, audit = sizes[iteration]
        print(
            f"after iteration {iteration:>5}: document {document} bytes, "
            f"{audit} audit events, step {times[iteration - 1] * 1000:.2f} ms"
        )
    ratio = late / early
    print(
        f"step near iteration 10 (baseline): {early * 1000:.2f} ms; "
        f"over the last {WINDOW}: {late * 1000:.2f} ms"
    )
    print(f"ratio late/early: {ratio:.2f}x (goal <= 2x): {verdict(ratio, 2.0)}")
    growth = sizes[iterations][0] / sizes[min(sizes)][0]
    print(f"document growth from iteration 10 to {iterations}: {growth:.2f}x")
    print(f"at the end: {load_note()}")
    app.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args()
    print(f"bench.history on {machine()}; one instance, {args.iterations} loop iterations")
    raw_times, raw_tasks = raw_loop(args.iterations)
    early, late = windows(raw_times)
    print(
        f"raw SpiffWorkflow, unpruned: step near 10 {early * 1000:.3f} ms, last {WINDOW} "
        f"{late * 1000:.3f} ms ({late / early:.2f}x); {raw_tasks} tasks in the tree at the end"
    )
    kinds: tuple[str, ...] = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    for kind in kinds:
        engine_loop(kind, args.iterations)


if __name__ == "__main__":
    main()
