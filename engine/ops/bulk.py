"""Bulk ops actions: pick cases or incidents by filter, then run one command per item.

Each item is its own transaction: one case refusing (already ended, changed meanwhile) does
not undo the others, and the answer lists what was done and what was refused, and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.accounts.actor import Actor
from engine.errors import GovflowError
from engine.ops.commands import target_version
from engine.ops.migration import migration_problem
from engine.runtime.runner import Runner, VersionCache
from engine.store.models import ElementState, Incident, Instance

MAX_BULK = 1000


@dataclass
class InstanceFilter:
    definition_key: str | None = None
    version: int | None = None
    status: str | None = None
    element_id: str | None = None
    instance_ids: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.definition_key or self.status or self.element_id or self.instance_ids)


def select_instances(session: Session, flt: InstanceFilter, limit: int = MAX_BULK) -> list[str]:
    query = select(Instance.id).where(Instance.status.not_in(("completed", "cancelled")))
    if flt.definition_key:
        query = query.where(Instance.definition_key == flt.definition_key)
    if flt.version is not None:
        query = query.where(Instance.definition_version == flt.version)
    if flt.status:
        query = query.where(Instance.status == flt.status)
    if flt.instance_ids:
        query = query.where(Instance.id.in_(flt.instance_ids))
    if flt.element_id:
        query = query.where(
            Instance.id.in_(
                select(ElementState.instance_id).where(
                    ElementState.element_id == flt.element_id, ElementState.active > 0
                )
            )
        )
    return list(session.scalars(query.order_by(Instance.started_at, Instance.id).limit(limit)))


def select_incidents(
    session: Session,
    kind: str | None = None,
    definition_key: str | None = None,
    element_id: str | None = None,
    instance_ids: list[str] | None = None,
    limit: int = MAX_BULK,
) -> list[int]:
    query = select(Incident.id).where(Incident.resolved_at.is_(None))
    if kind:
        query = query.where(Incident.kind == kind)
    if element_id:
        query = query.where(Incident.element_id == element_id)
    if instance_ids:
        query = query.where(Incident.instance_id.in_(instance_ids))
    if definition_key:
        query = query.where(
            Incident.instance_id.in_(
                select(Instance.id).where(Instance.definition_key == definition_key)
            )
        )
    return list(session.scalars(query.order_by(Incident.id).limit(limit)))


def run_each(
    runner: Runner, actor: Actor, items: list[Any], make: Callable[[Any], Any]
) -> dict[str, Any]:
    """Run one command per item; report what was done and what was refused."""
    done: list[Any] = []
    refused: list[dict[str, Any]] = []
    for item in items:
        try:
            runner.execute(make(item), actor)
            done.append(item)
        except GovflowError as exc:
            refused.append({"id": item, "error": exc.message})
    return {"done": done, "refused": refused}


def migration_plan(
    session: Session,
    versions: VersionCache,
    definition_key: str,
    to_version: int,
    flt: InstanceFilter,
    limit: int = MAX_BULK,
) -> dict[str, Any]:
    """Which cases can move to `to_version`, and why the others cannot (the dry run)."""
    row = target_version(session, definition_key, to_version)
    target = versions.get(session, row.id)
    flt.definition_key = definition_key
    movable: list[str] = []
    blocked: list[dict[str, Any]] = []
    for instance_id in select_instances(session, flt, limit):
        instance = session.get(Instance, instance_id)
        assert instance is not None
        if instance.definition_version_id == row.id:
            continue
        problem = migration_problem(instance.document, target)
        if problem:
            blocked.append(
                {
                    "instance_id": instance_id,
                    "version": instance.definition_version,
                    "reason": problem,
                }
            )
        else:
            movable.append(instance_id)
    return {"to_version": to_version, "movable": movable, "blocked": blocked}
