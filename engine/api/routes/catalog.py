"""The item catalogue (事项目录) and the policies: everyone logged in reads, ops change."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from engine.api.deps import ActorDep, GovflowDep, OpsDep
from engine.api.routes import errors
from engine.api.schemas import CatalogItemIn, CatalogItemOut, PolicyIn
from engine.errors import InvalidInput
from engine.runtime import catalog_ops

router = APIRouter(prefix="/api", tags=["catalog"])

CodePath = Annotated[str, Path(min_length=1, max_length=64)]
KeyPath = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[a-z0-9_]+$")]


@router.get("/catalog", response_model=list[CatalogItemOut], responses=errors(401, 422))
def list_items(
    actor: ActorDep,
    govflow: GovflowDep,
    department: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[str | None, Query(pattern="^(item|one-thing)$")] = None,
) -> list[dict[str, Any]]:
    """Catalogue items, by department then code; filter by department code or kind."""
    return catalog_ops.list_items(govflow, department, kind)


@router.get("/catalog/{code}", response_model=CatalogItemOut, responses=errors(401, 404))
def get_item(actor: ActorDep, govflow: GovflowDep, code: CodePath) -> dict[str, Any]:
    return catalog_ops.get_item(govflow, code)


@router.put("/catalog/{code}", response_model=CatalogItemOut, responses=errors(401, 403, 422))
def put_item(
    actor: OpsDep, govflow: GovflowDep, code: CodePath, body: CatalogItemIn
) -> dict[str, Any]:
    """Add or replace an item; cases already running keep the deadlines they were promised."""
    if body.code != code:
        raise InvalidInput(
            f"the body's code {body.code!r} is not the path's {code!r}",
            [{"path": "code", "message": "must match the path"}],
        )
    return catalog_ops.put_item(govflow, actor, body.model_dump())


@router.get("/policies", response_model=dict[str, Any], responses=errors(401))
def list_policies(actor: ActorDep, govflow: GovflowDep) -> dict[str, Any]:
    """The configurable rules: supplement and rating periods, rectification limits, ..."""
    return catalog_ops.list_policies(govflow)


@router.put("/policies/{key}", response_model=dict[str, Any], responses=errors(401, 403, 422))
def set_policy(actor: OpsDep, govflow: GovflowDep, key: KeyPath, body: PolicyIn) -> dict[str, Any]:
    catalog_ops.set_policy(govflow, actor, key, body.value)
    return catalog_ops.list_policies(govflow)
