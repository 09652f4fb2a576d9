"""Task permissions: a clerk works only on tasks of their departments or assigned to them."""

from __future__ import annotations

from collections.abc import Sequence

from engine.accounts.actor import Actor


def is_candidate(actor: Actor, groups: Sequence[str], users: Sequence[str]) -> bool:
    return actor.username in users or bool(actor.departments.intersection(groups))


def may_see_task(
    actor: Actor, assignee: str | None, groups: Sequence[str], users: Sequence[str]
) -> bool:
    if actor.has_role("ops", "admin"):
        return True
    return assignee == actor.username or is_candidate(actor, groups, users)


def may_work_on_task(
    actor: Actor, assignee: str | None, groups: Sequence[str], users: Sequence[str]
) -> bool:
    """Claim or complete: the assignee, or (when unassigned) a candidate."""
    if assignee is not None:
        return assignee == actor.username
    return is_candidate(actor, groups, users)


def may_manage_assignment(actor: Actor) -> bool:
    """Assign a task to someone else or take it away from its assignee."""
    return actor.has_role("ops", "admin")
