"""Moving finished history out of the live task tree.

SpiffWorkflow keeps every task an instance ever ran in one tree and walks the whole tree on
every step, so a long-running loop gets slower with each iteration and its document grows
without bound. Whatever lies outside the subtree of the deepest *completed* task that all
unfinished tasks descend from can never influence execution again (joins that are still
waiting keep their split inside that subtree), so it is dropped. What happened there is
already recorded in the element counters and the audit log.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.runtime.spiff_patches import deepest_common_ancestor


def _subtree_ids(root: Task) -> set[Any]:
    keep = {root.id}
    stack = [root]
    tasks = root.workflow.tasks
    while stack:
        task = stack.pop()
        for child_id in task._children:
            if child_id not in keep and child_id in tasks:
                keep.add(child_id)
                stack.append(tasks[child_id])
    return keep


def prune_workflow(workflow: Any) -> list[Task]:
    """Drop finished history from one (sub)workflow's tree; returns the dropped tasks."""
    unfinished = [t for t in workflow.tasks.values() if t.has_state(TaskState.NOT_FINISHED_MASK)]
    if not unfinished:
        return []
    root = deepest_common_ancestor(unfinished)
    while root is not None and not root.has_state(TaskState.COMPLETED):
        root = root.parent
    if root is None or root is workflow.task_tree:
        return []
    keep = _subtree_ids(root)
    dropped = [t for t in workflow.tasks.values() if t.id not in keep]
    for task in dropped:
        del workflow.tasks[task.id]
    root._parent = None
    workflow.task_tree = root
    if workflow.last_task is not None and workflow.last_task.id not in keep:
        workflow.last_task = root
    return dropped


def prune_history(top: Any) -> list[Task]:
    """Prune the top workflow and its live subprocesses; forget subprocesses whose task is gone."""
    dropped = prune_workflow(top)
    for subprocess in list(top.subprocesses.values()):
        if not subprocess.completed:
            dropped.extend(prune_workflow(subprocess))
    live_ids = set(top.tasks)
    for subprocess in top.subprocesses.values():
        live_ids.update(subprocess.tasks)
    changed = True
    while changed:
        changed = False
        for parent_id in list(top.subprocesses):
            if parent_id not in live_ids:
                gone = top.subprocesses.pop(parent_id)
                dropped.extend(gone.tasks.values())
                live_ids.difference_update(gone.tasks)
                changed = True
    return dropped
