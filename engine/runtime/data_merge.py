"""Three-way merge of task data where parallel branches meet.

SpiffWorkflow 3.2.0 merges each branch's *whole* data over the others at a join, so a branch
that left key `a` untouched writes the old `a` back over the new value another branch set.
Merging only what each branch changed relative to the data at the split keeps every change.
When two branches change the same key differently, the branch that arrived last wins.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

_MISSING = object()


def three_way_merge(base: dict[str, Any], branches: list[dict[str, Any]]) -> dict[str, Any]:
    """Start from `base` and apply each branch's changes relative to `base`, in order."""
    merged = deepcopy(base)
    for branch in branches:
        _apply_changes(merged, base, branch)
    return merged


def _apply_changes(target: dict[str, Any], base: dict[str, Any], branch: dict[str, Any]) -> None:
    for key, value in branch.items():
        old = base.get(key, _MISSING)
        if old is _MISSING:
            if key not in target or target[key] != value:
                target[key] = deepcopy(value)
            continue
        if old == value:
            continue
        current = target.get(key, _MISSING)
        if isinstance(old, dict) and isinstance(value, dict) and isinstance(current, dict):
            _apply_changes(current, old, value)
        else:
            target[key] = deepcopy(value)
    for key in base:
        if key not in branch and key in target:
            del target[key]
