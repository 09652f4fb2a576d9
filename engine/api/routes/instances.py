"""Cases: start, list, look at, and the ops actions on them; incidents; messages."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy import select

from engine.api.deps import ActorDep, ClerkOrOpsDep, GovflowDep, OpsDep
from engine.api.routes import MAX_ID, errors
from engine.api.schemas import (
    ClockIn,
    ClockOut,
    IncidentOut,
    InstanceCreate,
    InstanceDetailOut,
    InstanceOut,
    InstancePage,
    InstanceStatus,
    MessageIn,
    MessageOut,
    ReasonIn,
)
from engine.app import Govflow
from engine.errors import NotFound
from engine.runtime import clock, clocks, commands, messages, queries
from engine.store.models import Incident, Instance

router = APIRouter(prefix="/api", tags=["instances"])


def instance_out(
    govflow: Govflow,
    instance_id: str,
) -> InstanceOut:
    with govflow.database.read_session() as session:
        row = session.get(Instance, instance_id)
        if row is None:
            raise NotFound(f"no instance {instance_id}")
        return InstanceOut.model_validate(queries.instance_to_dict(row))


@router.post(
    "/instances", response_model=InstanceOut, status_code=201, responses=errors(401, 403, 404, 422)
)
def start_instance(
    actor: ActorDep,
    govflow: GovflowDep,
    body: InstanceCreate,
) -> InstanceOut:
    """Start a case of a deployed process (its latest version unless `version` is given)."""
    instance = govflow.start(
        body.definition_key, actor, body.business_key, body.variables, body.version
    )
    return instance_out(govflow, instance.id)


@router.get("/instances", response_model=InstancePage, responses=errors(401, 422))
def list_instances(
    actor: ActorDep,
    govflow: GovflowDep,
    status: InstanceStatus | None = None,
    definition_key: Annotated[str | None, Query(max_length=200)] = None,
    business_key: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    overdue: Annotated[bool | None, Query(description="a running SLA clock is past due")] = None,
    due_soon: Annotated[
        bool | None, Query(description="a running SLA clock is due within one working day")
    ] = None,
    provisional: Annotated[
        bool | None, Query(description="has a deadline counted through an unknown year")
    ] = None,
) -> InstancePage:
    """Newest first. Ops, admins and designers see every case; a clerk sees the cases they
    started or that hold work of theirs."""
    with govflow.database.read_session() as session:
        rows, next_cursor = queries.list_instances(
            session,
            actor,
            status,
            definition_key,
            business_key,
            limit,
            cursor,
            govflow.services.calendars.get(),
            overdue,
            due_soon,
            provisional,
        )
        items = [InstanceOut.model_validate(queries.instance_to_dict(r)) for r in rows]
    return InstancePage(items=items, next_cursor=next_cursor)


@router.get(
    "/instances/{instance_id}", response_model=InstanceDetailOut, responses=errors(401, 403, 404)
)
def get_instance(
    actor: ActorDep,
    govflow: GovflowDep,
    instance_id: str,
) -> InstanceDetailOut:
    with govflow.database.read_session() as session:
        queries.require_instance_visible(session, actor, instance_id)
        detail = queries.instance_detail(session, instance_id, govflow.services.calendars.get())
        return InstanceDetailOut.model_validate(detail)


@router.post(
    "/instances/{instance_id}/clocks/{clock_name}/{action}",
    response_model=ClockOut,
    responses=errors(401, 403, 404, 409, 422),
)
def change_clock(
    actor: ActorDep,
    govflow: GovflowDep,
    instance_id: str,
    clock_name: Annotated[str, Path(max_length=100)],
    action: Literal["start", "pause", "resume", "stop"],
    body: ClockIn | None = None,
) -> ClockOut:
    """Start a case's SLA clock (with `workdays`), pause it (补正, 特别程序; the paused working
    days do not count), resume it, or stop it."""
    body = body or ClockIn()
    command = commands.ChangeClock(instance_id, action, clock_name, body.workdays, body.reason)
    row = govflow.runner.execute(command, actor)
    calendar = govflow.services.calendars.get()
    return ClockOut.model_validate(clocks.to_dict(row, calendar, clock.now()))


def _instance_action(
    command_class: Any,
    summary: str,
) -> Any:
    def action(
        instance_id: str,
        actor: OpsDep,
        govflow: GovflowDep,
        body: ReasonIn | None = None,
    ) -> InstanceOut:
        govflow.runner.execute(command_class(instance_id, body.reason if body else ""), actor)
        return instance_out(govflow, instance_id)

    action.__doc__ = summary
    return action


for _name, _command, _summary in (
    ("cancel", commands.CancelInstance, "Cancel a case; its open tasks go away. Ops and admin."),
    ("suspend", commands.SuspendInstance, "Suspend a case: no work is accepted until resumed."),
    ("resume", commands.ResumeInstance, "Resume a suspended case."),
):
    router.add_api_route(
        f"/instances/{{instance_id}}/{_name}",
        _instance_action(_command, _summary),
        methods=["POST"],
        response_model=InstanceOut,
        responses=errors(401, 403, 404, 409, 422),
        name=f"{_name}_instance",
    )


@router.post("/messages", response_model=MessageOut, responses=errors(401, 403, 404, 409, 422))
def send_message(
    actor: ClerkOrOpsDep,
    govflow: GovflowDep,
    body: MessageIn,
) -> MessageOut:
    """Deliver a message to the case waiting for it (narrowed by correlation_key = business
    key), or start a case of the process whose message start event has that name."""
    delivery = messages.deliver(
        govflow.runner, actor, body.name, body.payload, body.correlation_key
    )
    return MessageOut(instance_id=delivery.instance_id, started=delivery.started)


def _incident_out(
    row: Incident,
) -> IncidentOut:
    return IncidentOut(
        id=row.id,
        instance_id=row.instance_id,
        kind=row.kind,
        element_id=row.element_id,
        task_id=row.task_id,
        message=row.message,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
    )


@router.get("/incidents", response_model=list[IncidentOut], responses=errors(401, 403))
def list_incidents(
    actor: OpsDep,
    govflow: GovflowDep,
    instance_id: Annotated[str | None, Query(max_length=36)] = None,
    open_only: Annotated[bool, Query(alias="open")] = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[IncidentOut]:
    with govflow.database.read_session() as session:
        query = select(Incident).order_by(Incident.id.desc()).limit(limit)
        if instance_id:
            query = query.where(Incident.instance_id == instance_id)
        if open_only:
            query = query.where(Incident.resolved_at.is_(None))
        return [_incident_out(r) for r in session.scalars(query)]


@router.post(
    "/incidents/{incident_id}/retry",
    response_model=IncidentOut,
    responses=errors(401, 403, 404, 409),
)
def retry_incident(
    actor: OpsDep,
    govflow: GovflowDep,
    incident_id: Annotated[int, Path(ge=1, le=MAX_ID)],
    body: ReasonIn | None = None,
) -> IncidentOut:
    """Run the failed element again (or let a capped loop go on)."""
    govflow.runner.execute(commands.RetryIncident(incident_id, body.reason if body else ""), actor)
    with govflow.database.read_session() as session:
        row = session.get(Incident, incident_id)
        assert row is not None
        return _incident_out(row)
