"""Changing the item catalogue and the policies: ops only, audited, all or nothing.

Running cases read the new values at their next step (the provider reloads on a version bump);
deadlines already computed stay as they were, as a promise made to the applicant.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from engine.accounts.actor import Actor
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.runtime import catalog
from engine.store.models import AuditEvent, CatalogItem, Policy

if TYPE_CHECKING:
    from engine.app import Govflow


def _require_ops(actor: Actor) -> None:
    if not actor.has_role("ops", "admin"):
        raise Forbidden("changing the catalogue or the policies needs the ops or admin role")


def list_items(
    govflow: Govflow, department: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    with govflow.database.read_session() as session:
        query = select(CatalogItem).order_by(CatalogItem.department, CatalogItem.code)
        if department:
            query = query.where(CatalogItem.department == department)
        if kind:
            query = query.where(CatalogItem.kind == kind)
        return [catalog.item_to_dict(row) for row in session.scalars(query)]


def get_item(govflow: Govflow, code: str) -> dict[str, Any]:
    with govflow.database.read_session() as session:
        row = session.get(CatalogItem, code)
        if row is None:
            raise NotFound(f"no catalogue item {code!r}")
        return catalog.item_to_dict(row)


def import_items(govflow: Govflow, actor: Actor, items: list[dict[str, Any]], source: str) -> int:
    """Insert or replace items; one bad item or unknown department and nothing changes."""
    _require_ops(actor)
    with govflow.database.session() as session:
        count = catalog.store_items(session, items)
        session.add(
            AuditEvent(
                actor=actor.username,
                command="catalog_import",
                data={"source": source, "codes": [i["code"] for i in items]},
            )
        )
    govflow.services.catalog.invalidate()
    return count


def put_item(govflow: Govflow, actor: Actor, raw: dict[str, Any]) -> dict[str, Any]:
    try:
        item = catalog.normalise_item(raw)
    except ValueError as exc:
        raise InvalidInput(str(exc), [{"path": "$", "message": str(exc)}]) from None
    import_items(govflow, actor, [item], "api")
    return get_item(govflow, item["code"])


def list_policies(govflow: Govflow) -> dict[str, Any]:
    with govflow.database.read_session() as session:
        return {p.key: p.value for p in session.scalars(select(Policy).order_by(Policy.key))}


def set_policy(govflow: Govflow, actor: Actor, key: str, value: Any) -> None:
    _require_ops(actor)
    if not key or len(key) > 100:
        raise InvalidInput("a policy key is 1-100 characters", [{"path": "key", "message": key}])
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"policy {key}: the value is not plain JSON (NaN and Infinity are not allowed)",
            [{"path": "value", "message": "not plain JSON"}],
        ) from None
    expected = catalog.policy_problem(key, value)
    if expected is not None:
        raise InvalidInput(
            f"policy {key} must be {expected}, not {value!r}",
            [{"path": "value", "message": f"must be {expected}"}],
        )
    with govflow.database.session() as session:
        old = session.get(Policy, key)
        previous = old.value if old is not None else None
        catalog.set_policy(session, key, value)
        session.add(
            AuditEvent(
                actor=actor.username,
                command="policy_set",
                data={"key": key, "value": value, "previous": previous},
            )
        )
    govflow.services.catalog.invalidate()
