"""Moving a running case onto another version of its process.

An instance document names each task's element; it can move when every element it still
needs exists in the target version with the same boundary-event structure. Predicted tasks
(paths not yet taken) are dropped before loading and predicted again from the new version,
so only where the case *is* and *has been* matter.
"""

from __future__ import annotations

import json
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState

from engine.runtime.projections import all_tasks
from engine.runtime.runner import LoadedVersion

SPLIT = ".BoundaryEventSplit"


def _element(spec_name: str) -> str:
    return spec_name.removesuffix(SPLIT)


def _predictions(entries: list[dict[str, Any]]) -> set[str]:
    """Tasks on paths not yet taken: MAYBE/LIKELY ones, and FUTURE ones below a task that
    has not completed (SpiffWorkflow predicts a certain path as FUTURE)."""
    by_id = {e["id"]: e for e in entries}
    found: set[str] = set()
    for entry in entries:
        state = entry["state"]
        parent = by_id.get(entry["parent"] or "")
        if state & TaskState.PREDICTED_MASK or (
            state == TaskState.FUTURE
            and parent is not None
            and parent["state"] != TaskState.COMPLETED
        ):
            found.add(entry["id"])
    return found


def _check_tasks(
    entries: list[dict[str, Any]], spec_names: set[str], version: int, where: str
) -> str | None:
    by_id = {e["id"]: e for e in entries}
    predicted = _predictions(entries)
    for entry in entries:
        state = entry["state"]
        if entry["id"] in predicted:
            continue
        name = entry["spec"]
        if name not in spec_names:
            missing = f"which version {version} does not have"
            if state & TaskState.DEFINITE_MASK or state == TaskState.ERROR:
                return f"it is parked on element {_element(name)!r}{where}, {missing}"
            return f"its history passes element {_element(name)!r}{where}, {missing}"
        if state & (TaskState.DEFINITE_MASK | TaskState.ERROR) and not name.endswith(SPLIT):
            parent = by_id.get(entry["parent"] or "")
            had_split = parent is not None and parent["spec"] == f"{name}{SPLIT}"
            has_split = f"{name}{SPLIT}" in spec_names
            if had_split != has_split:
                return (
                    f"its token at {name!r}{where} would change boundary events "
                    f"({'removed' if had_split else 'added'} in version {version}); move the "
                    "token first"
                )
    return None


def migration_problem(document: str, target: LoadedVersion) -> str | None:
    """Why the case cannot move to `target`, or None when it can."""
    raw = json.loads(document)
    problem = _check_tasks(raw["tasks"], set(target.spec.task_specs), target.version, "")
    if problem:
        return problem
    for sub in raw.get("subprocesses", {}).values():
        sub_spec = target.subprocess_specs.get(sub["spec"])
        if sub_spec is None:
            return (
                f"it runs subprocess {sub['spec']!r}, which version {target.version} does not have"
            )
        problem = _check_tasks(
            sub["tasks"], set(sub_spec.task_specs), target.version, f" in {sub['spec']!r}"
        )
        if problem:
            return problem
    return None


def _strip(tree: dict[str, Any]) -> None:
    dropped = _predictions(tree["tasks"])
    tree["tasks"] = [e for e in tree["tasks"] if e["id"] not in dropped]
    for entry in tree["tasks"]:
        entry["children"] = [c for c in entry["children"] if c not in dropped]


def without_predictions(document: str) -> str:
    """The document with every predicted (not yet taken) task removed."""
    raw = json.loads(document)
    _strip(raw)
    for sub in raw.get("subprocesses", {}).values():
        _strip(sub)
    return json.dumps(raw, ensure_ascii=False, separators=(",", ":"))


def predict_again(workflow: BpmnWorkflow) -> None:
    """Let the new version predict the paths ahead of every open task."""
    for task in list(all_tasks(workflow)):
        if task._state & TaskState.NOT_FINISHED_MASK and not task._children:
            task.task_spec._predict(task, mask=TaskState.NOT_FINISHED_MASK)
