"""Ops: stuck cases, bulk repairs, token moves, variable edits, version migration,
retention, and the Prometheus scrape endpoint."""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response
from pydantic import Field

from engine.api.deps import GovflowDep, OpsDep
from engine.api.routes import errors
from engine.api.routes.instances import instance_out
from engine.api.schemas import InstanceOut, Strict
from engine.errors import InvalidInput, Unauthorized
from engine.ops import bulk, metrics, retention, stuck
from engine.ops.commands import MigrateInstance, MoveToken, SetVariables
from engine.runtime import clock, commands, projections

router = APIRouter(tags=["ops"])

Reason = Annotated[str, Field(min_length=1, max_length=2000)]


class StuckOut(Strict):
    instance_id: str
    definition_key: str
    version: int
    business_key: str | None
    reason: str
    since: datetime
    detail: str
    action: str
    element_id: str | None
    refs: dict[str, Any]


class InstanceFilterIn(Strict):
    definition_key: str | None = Field(default=None, max_length=200)
    version: int | None = Field(default=None, ge=1)
    status: Literal["running", "waiting", "error", "suspended"] | None = None
    element_id: str | None = Field(default=None, max_length=200)
    instance_ids: list[Annotated[str, Field(max_length=36)]] = Field(
        default_factory=list, max_length=bulk.MAX_BULK
    )

    def to_filter(self) -> bulk.InstanceFilter:
        return bulk.InstanceFilter(
            self.definition_key, self.version, self.status, self.element_id, self.instance_ids
        )


class BulkInstancesIn(InstanceFilterIn):
    reason: Reason


class BulkIncidentsIn(Strict):
    kind: str | None = Field(default=None, max_length=32)
    definition_key: str | None = Field(default=None, max_length=200)
    element_id: str | None = Field(default=None, max_length=200)
    instance_ids: list[Annotated[str, Field(max_length=36)]] = Field(
        default_factory=list, max_length=bulk.MAX_BULK
    )
    reason: Reason


class RefusedOut(Strict):
    id: str | int
    error: str


class BulkOut(Strict):
    selected: int
    done: list[str | int]
    refused: list[RefusedOut]


class MoveIn(Strict):
    source: str = Field(alias="from", min_length=1, max_length=200)
    target: str = Field(alias="to", min_length=1, max_length=200)
    reason: Reason


class MoveOut(Strict):
    instance: InstanceOut
    entered_tasks: list[str]


class VariablesIn(Strict):
    values: dict[str, Any] = Field(default_factory=dict)
    remove: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list)
    reason: Reason


class MigrationIn(InstanceFilterIn):
    to_version: int = Field(ge=1)
    dry_run: bool = True
    reason: str = Field(default="", max_length=2000)


class BlockedOut(Strict):
    instance_id: str
    version: int
    reason: str


class MigrationOut(Strict):
    to_version: int
    dry_run: bool
    movable: list[str]
    blocked: list[BlockedOut]
    migrated: list[str] = Field(default_factory=list)
    refused: list[RefusedOut] = Field(default_factory=list)


class PurgeIn(Strict):
    days: int | None = Field(default=None, ge=0, le=36500)
    dry_run: bool = False


class PurgeOut(Strict):
    days: int
    cutoff: datetime
    archived: int
    bytes_before: int
    bytes_after: int
    dry_run: bool


@router.get("/api/ops/stuck", response_model=list[StuckOut], responses=errors(401, 403, 422))
def list_stuck(
    actor: OpsDep,
    govflow: GovflowDep,
    reason: Literal[stuck.REASONS] | None = None,  # type: ignore[valid-type]
    definition_key: Annotated[str | None, Query(max_length=200)] = None,
    job_pending_minutes: Annotated[float | None, Query(ge=0, le=525_600)] = None,
    timer_lag_minutes: Annotated[float | None, Query(ge=0, le=525_600)] = None,
    no_progress_workhours: Annotated[float | None, Query(ge=0, le=20_000)] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[StuckOut]:
    """Cases that do not move, one entry per cause: failed job, job without a worker, timer
    not fired, overdue task nobody claimed, no progress while waiting on nobody, case in
    error. Thresholds default to the GOVFLOW_STUCK_* settings."""
    base = stuck.Thresholds.from_settings(govflow.settings)
    limits = stuck.Thresholds(
        job_pending_minutes if job_pending_minutes is not None else base.job_pending_minutes,
        timer_lag_minutes if timer_lag_minutes is not None else base.timer_lag_minutes,
        no_progress_workhours if no_progress_workhours is not None else base.no_progress_workhours,
    )
    with govflow.database.read_session() as session:
        found = stuck.detect(
            session,
            clock.now(),
            govflow.services.calendars.get(),
            limits,
            definition_key,
            reason,
            limit,
        )
    return [StuckOut.model_validate(c.to_dict()) for c in found]


def _bulk_out(selected: list[Any], result: dict[str, Any]) -> BulkOut:
    return BulkOut(
        selected=len(selected),
        done=result["done"],
        refused=[RefusedOut(**r) for r in result["refused"]],
    )


@router.post("/api/ops/incidents/retry", response_model=BulkOut, responses=errors(401, 403, 422))
def retry_incidents(actor: OpsDep, govflow: GovflowDep, body: BulkIncidentsIn) -> BulkOut:
    """Retry every open incident the filter selects (at most 1000), each on its own."""
    with govflow.database.read_session() as session:
        ids = bulk.select_incidents(
            session, body.kind, body.definition_key, body.element_id, body.instance_ids
        )
    result = bulk.run_each(
        govflow.runner, actor, ids, lambda i: commands.RetryIncident(i, body.reason)
    )
    return _bulk_out(ids, result)


_BULK = {
    "cancel": commands.CancelInstance,
    "suspend": commands.SuspendInstance,
    "resume": commands.ResumeInstance,
}


@router.post("/api/ops/instances/{action}", response_model=BulkOut, responses=errors(401, 403, 422))
def bulk_instances(
    actor: OpsDep,
    govflow: GovflowDep,
    action: Literal["cancel", "suspend", "resume"],
    body: BulkInstancesIn,
) -> BulkOut:
    """Cancel, suspend or resume every live case the filter selects (at most 1000). An
    empty filter is refused: name a process, a state, an element or the cases."""
    flt = body.to_filter()
    if flt.is_empty():
        raise InvalidInput(
            f"a bulk {action} needs a filter",
            [{"path": "$", "message": "give definition_key, status, element_id or instance_ids"}],
        )
    with govflow.database.read_session() as session:
        ids = bulk.select_instances(session, flt)
    command = _BULK[action]
    result = bulk.run_each(govflow.runner, actor, ids, lambda i: command(i, body.reason))
    return _bulk_out(ids, result)


@router.post(
    "/api/ops/instances/{instance_id}/move",
    response_model=MoveOut,
    responses=errors(401, 403, 404, 409, 422),
)
def move_token(actor: OpsDep, govflow: GovflowDep, instance_id: str, body: MoveIn) -> MoveOut:
    """Leave element `from` (its token is cancelled, with the boundary events on it) and
    enter element `to` of the same (sub)process, keeping the case data."""
    entered = govflow.runner.execute(
        MoveToken(instance_id, body.reason, body.source, body.target), actor
    )
    return MoveOut(instance=instance_out(govflow, instance_id), entered_tasks=entered)


@router.patch(
    "/api/ops/instances/{instance_id}/variables",
    response_model=dict[str, Any],
    responses=errors(401, 403, 404, 409, 422),
)
def edit_variables(
    actor: OpsDep, govflow: GovflowDep, instance_id: str, body: VariablesIn
) -> dict[str, Any]:
    """Set and remove case variables on every open branch; the old values go to the audit."""
    current = govflow.runner.execute(
        SetVariables(instance_id, body.reason, body.values, body.remove), actor
    )
    return projections.jsonable(current)


@router.post(
    "/api/ops/migrations", response_model=MigrationOut, responses=errors(401, 403, 404, 422)
)
def migrate(actor: OpsDep, govflow: GovflowDep, body: MigrationIn) -> MigrationOut:
    """Move live cases of a process to another version. With dry_run (the default) nothing
    changes: the answer says which cases can move and why the others cannot."""
    if body.definition_key is None:
        raise InvalidInput(
            "a migration needs definition_key",
            [{"path": "$.definition_key", "message": "required"}],
        )
    if not body.dry_run and not body.reason.strip():
        raise InvalidInput(
            "a migration changes cases outside their process: give a reason",
            [{"path": "$.reason", "message": "required"}],
        )
    with govflow.database.read_session() as session:
        plan = bulk.migration_plan(
            session,
            govflow.services.versions,
            body.definition_key,
            body.to_version,
            body.to_filter(),
        )
    out = MigrationOut(
        to_version=body.to_version,
        dry_run=body.dry_run,
        movable=plan["movable"],
        blocked=[BlockedOut(**b) for b in plan["blocked"]],
    )
    if not body.dry_run:
        result = bulk.run_each(
            govflow.runner,
            actor,
            plan["movable"],
            lambda i: MigrateInstance(i, body.reason, body.to_version),
        )
        out.migrated = result["done"]
        out.refused = [RefusedOut(**r) for r in result["refused"]]
    return out


@router.post("/api/ops/purge", response_model=PurgeOut, responses=errors(401, 403, 422))
def purge(actor: OpsDep, govflow: GovflowDep, body: PurgeIn | None = None) -> PurgeOut:
    """Archive the documents of cases ended more than `days` days ago (default
    GOVFLOW_RETENTION_DAYS); the audit log, tasks and history stay."""
    body = body or PurgeIn()
    days = body.days if body.days is not None else govflow.settings.retention_days
    report = retention.purge(govflow.database, clock.now(), days, body.dry_run, actor.username)
    return PurgeOut.model_validate(report.to_dict())


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **errors(401),
    },
    include_in_schema=True,
)
def prometheus_metrics(
    govflow: GovflowDep, authorization: Annotated[str | None, Header()] = None
) -> Response:
    """Prometheus scrape endpoint. When GOVFLOW_METRICS_TOKEN is set it must be sent as
    `Authorization: Bearer <token>`."""
    expected = govflow.settings.metrics_token
    if expected:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("the metrics endpoint needs the GOVFLOW_METRICS_TOKEN bearer token")
    return Response(
        content=metrics.exposition(govflow.database),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )
