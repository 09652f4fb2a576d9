"""One-thing bundles (一件事一次办): the combined form, applications, and per-item figures."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from engine.api.deps import ActorDep, GovflowDep
from engine.api.routes import errors
from engine.api.routes.instances import instance_out
from engine.api.schemas import ApplicationIn, InstanceOut, ItemFiguresOut
from engine.runtime import case_records, one_thing

router = APIRouter(prefix="/api", tags=["one thing"])

CodePath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]


@router.get("/one-thing/{code}/form", response_model=dict[str, Any], responses=errors(401, 404))
def combined_form(actor: ActorDep, govflow: GovflowDep, code: CodePath) -> dict[str, Any]:
    """The bundle's combined form (一表申请) as JSON Schema, generated from the catalogue."""
    return one_thing.form(govflow, code)


@router.post(
    "/one-thing/{code}/applications",
    response_model=InstanceOut,
    status_code=201,
    responses=errors(401, 404, 422),
)
def apply(actor: ActorDep, govflow: GovflowDep, code: CodePath, body: ApplicationIn) -> InstanceOut:
    """Submit the combined form: 422 names every wrong field (`$.data.phone`, ...); 201 starts
    the parent case, which the comprehensive window accepts."""
    instance = one_thing.apply(govflow, actor, code, body.data)
    return instance_out(govflow, instance.id)


@router.get("/figures/items", response_model=list[ItemFiguresOut], responses=errors(401, 422))
def item_figures(
    actor: ActorDep,
    govflow: GovflowDep,
    kind: Annotated[str | None, Query(pattern="^(item|one-thing)$")] = None,
) -> list[dict[str, Any]]:
    """Per catalogue item: volume, concluded, duration in working days (median, p90) and the
    share concluded by the promised moment."""
    with govflow.database.read_session() as session:
        return case_records.figures(session, kind)
