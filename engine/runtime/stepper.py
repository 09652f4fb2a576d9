"""Running the engine's own work (scripts, gateways, events) with failures contained.

One failing element does not stop the instance: it is put in ERROR, reported as a failure
(the runner turns it into an incident) and the other branches go on. A budget caps how many
tasks one command may execute, so a runaway loop becomes an incident, not a hung server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.runtime.history import prune_history
from engine.runtime.sandbox import ScriptError

PRUNE_EVERY = 100


@dataclass
class Failure:
    task_id: str | None
    element_id: str | None
    message: str


@dataclass
class StepResult:
    executed: int = 0
    failures: list[Failure] = field(default_factory=list)
    runaway: bool = False


class _BudgetSpent(Exception):
    pass


def element_of(task: Task | None) -> str | None:
    if task is None:
        return None
    return getattr(task.task_spec, "bpmn_id", None) or task.task_spec.name


def describe_failure(exc: BaseException, task: Task | None) -> str:
    inner = getattr(exc, "exception", None)
    if isinstance(inner, ScriptError):
        reason = str(inner)
    elif isinstance(exc, ScriptError):
        reason = str(exc)
    else:
        reason = str(exc.args[0]) if exc.args else type(exc).__name__
        if inner is not None and str(inner) not in reason:
            reason = f"{reason}: {inner}"
    spec = task.task_spec if task is not None else None
    name = getattr(spec, "bpmn_name", None)
    label = f"{element_of(task)!r}" + (f" ({name})" if name else "")
    return f"element {label} failed: {reason}" if task is not None else reason


def record_failure(result: StepResult, exc: BaseException, fallback: Task | None) -> None:
    culprit = getattr(exc, "task", None) or fallback
    if culprit is not None and not culprit.has_state(TaskState.FINISHED_MASK):
        culprit._set_state(TaskState.ERROR)
    result.failures.append(
        Failure(
            str(culprit.id) if culprit is not None else None,
            element_of(culprit),
            describe_failure(exc, culprit),
        )
    )


def _has_ready_engine_work(workflow: Any) -> bool:
    for wf in [workflow, *workflow.subprocesses.values()]:
        for task in wf.tasks.values():
            if task._state == TaskState.READY and not task.task_spec.manual:
                return True
    return False


def run_engine_steps(
    workflow: Any, budget: int, on_dropped: Callable[[list[Task]], None]
) -> StepResult:
    """Run every ready engine task until only people, timers, messages or jobs are left."""
    result = StepResult()
    current: list[Task | None] = [None]
    since_prune = 0

    def will_complete(task: Task) -> None:
        if result.executed >= budget:
            raise _BudgetSpent
        result.executed += 1
        current[0] = task

    while True:
        try:
            progressed = workflow._do_engine_steps(will_complete, None)
        except _BudgetSpent:
            result.runaway = True
            return result
        except Exception as exc:
            record_failure(result, exc, current[0])
            if result.failures[-1].task_id is None:
                return result
            continue
        if result.executed - since_prune >= PRUNE_EVERY:
            since_prune = result.executed
            on_dropped(prune_history(workflow))
        if progressed:
            continue
        try:
            workflow.refresh_timers()
        except Exception as exc:
            record_failure(result, exc, None)
            if result.failures[-1].task_id is None:
                return result
        if not _has_ready_engine_work(workflow):
            return result
