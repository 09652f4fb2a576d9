"""Worklists and the work on a task: claim, unclaim, assign, complete, comments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import TypeAdapter
from sqlalchemy import select

from engine.accounts.actor import Actor
from engine.api.deps import ActorDep, GovflowDep
from engine.api.routes import errors
from engine.api.schemas import (
    AssignIn,
    CommentIn,
    CommentOut,
    CompleteIn,
    TaskDetailOut,
    TaskOut,
)
from engine.app import Govflow
from engine.errors import Forbidden
from engine.runtime import clock, commands, comments, queries
from engine.runtime.forms import form_name
from engine.store.models import Instance, TaskComment

router = APIRouter(prefix="/api/tasks", tags=["tasks"])

SCOPE_HELP = (
    "mine: claimed by me; group: my departments' queues; all: every task (ops and admin only)"
)


def _task_out(govflow: Govflow, row: queries.HumanTask) -> TaskOut:
    now = clock.now()
    soon = queries.soon_limit(govflow.services.calendars.get(), now)
    return TaskOut.model_validate(queries.task_to_dict(row, now, soon))


# A clerk's every task is a claim-next and a completion: their routes come first, as
# routes are matched in order (see docs/performance.md, "Sunday, an Intel Xeon").


@router.post("/claim-next", response_model=TaskOut, responses=errors(401, 403, 404))
def claim_next(
    actor: ActorDep,
    govflow: GovflowDep,
    group: Annotated[
        str | None, Query(max_length=64, description="take from this department's queue only")
    ] = None,
) -> Response:
    """Claim the next unclaimed task of my queues, soonest due first (叫号): clerks pressing it
    at the same moment get different tasks. 404 when nothing is waiting."""
    if group is not None and group not in actor.departments:
        # ops may look at any queue, but only a department's own people may work its tasks
        raise Forbidden(f"{actor.username} is not in department {group!r}")
    ranges = tuple(queries.queue_ranges(actor, group))
    return _run(govflow, actor, commands.ClaimNextTask(ranges=ranges))


@router.post(
    "/{task_id}/complete", response_model=TaskOut, responses=errors(401, 403, 404, 409, 422)
)
def complete(
    actor: ActorDep,
    govflow: GovflowDep,
    task_id: str,
    body: CompleteIn,
) -> Response:
    """Complete a task with its form data; 422 lists every invalid field by JSON path."""
    return _run(govflow, actor, commands.CompleteTask(task_id, body.data))


# The worklist is the most requested page: its rows go from dicts to JSON in pydantic's core in
# one pass, instead of a model per row that FastAPI then validates and encodes again (less than
# half the CPU for 50 rows); the bytes are the same.
_TASK_LIST = TypeAdapter(list[TaskOut])


@router.get("", response_model=list[TaskOut], responses=errors(401, 403, 422))
def list_tasks(
    actor: ActorDep,
    govflow: GovflowDep,
    scope: Annotated[str, Query(pattern="^(mine|group|all)$", description=SCOPE_HELP)] = "group",
    state: Annotated[str, Query(pattern="^(open|completed|cancelled|any)$")] = "open",
    overdue: Annotated[bool | None, Query(description="only overdue, or only not overdue")] = None,
    q: Annotated[
        str | None,
        Query(max_length=200, description="text in name or business key, in either case"),
    ] = None,
    group: Annotated[str | None, Query(max_length=64, description="one department's queue")] = None,
    due_soon: Annotated[bool, Query(description="only tasks due within one working day")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> Response:
    """A worklist, soonest due first, then by priority."""
    with govflow.database.read_session() as session:
        now = clock.now()
        soon = queries.soon_limit(govflow.services.calendars.get(), now)
        rows = queries.list_tasks(
            session, actor, scope, group, state, overdue, q, limit, soon if due_soon else None
        )
        tasks = _TASK_LIST.validate_python([queries.task_to_dict(r, now, soon) for r in rows])
    return Response(_TASK_LIST.dump_json(tasks), media_type="application/json")


@router.get("/{task_id}", response_model=TaskDetailOut, responses=errors(401, 403, 404))
def get_task(
    actor: ActorDep,
    govflow: GovflowDep,
    task_id: str,
) -> TaskDetailOut:
    """A task with its form's JSON Schema and the case data as it is now."""
    with govflow.database.read_session() as session:
        row = queries.get_task(session, actor, task_id)
        instance = session.get(Instance, row.instance_id)
        assert instance is not None
        schema = None
        if row.form_key:
            version = govflow.services.versions.get(session, instance.definition_version_id)
            schema = version.forms.get(form_name(row.form_key))
        now = clock.now()
        soon = queries.soon_limit(govflow.services.calendars.get(), now)
        return TaskDetailOut.model_validate(
            {
                **queries.task_to_dict(row, now, soon),
                "form_schema": schema,
                "data": instance.variables or {},
            }
        )


# A task command's answer goes to JSON in one pass too: returned as a model, FastAPI would
# validate it again against the response model before encoding it.
_TASK = TypeAdapter(TaskOut)


def _run(govflow: Govflow, actor: Actor, command: object) -> Response:
    # every task command answers with its row as it committed it
    row = govflow.runner.execute(command, actor)  # type: ignore[arg-type]
    assert isinstance(row, queries.HumanTask)
    return Response(_TASK.dump_json(_task_out(govflow, row)), media_type="application/json")


@router.post("/{task_id}/claim", response_model=TaskOut, responses=errors(401, 403, 404, 409))
def claim(
    actor: ActorDep,
    govflow: GovflowDep,
    task_id: str,
) -> Response:
    """Take a task from the department queue. 409 when someone else holds it."""
    return _run(govflow, actor, commands.ClaimTask(task_id))


@router.post("/{task_id}/unclaim", response_model=TaskOut, responses=errors(401, 403, 404, 409))
def unclaim(
    actor: ActorDep,
    govflow: GovflowDep,
    task_id: str,
) -> Response:
    """Give a claimed task back to its queue (the holder, or ops)."""
    return _run(govflow, actor, commands.UnclaimTask(task_id))


@router.post("/{task_id}/assign", response_model=TaskOut, responses=errors(401, 403, 404, 409, 422))
def assign(
    actor: ActorDep,
    govflow: GovflowDep,
    task_id: str,
    body: AssignIn,
) -> Response:
    """Give a task to a user: ops to anyone, a clerk to a colleague of the task's department."""
    return _run(govflow, actor, commands.AssignTask(task_id, body.user))


@router.get("/{task_id}/comments", response_model=list[CommentOut], responses=errors(401, 403, 404))
def list_comments(
    actor: ActorDep,
    govflow: GovflowDep,
    task_id: str,
) -> list[CommentOut]:
    with govflow.database.read_session() as session:
        queries.get_task(session, actor, task_id)
        rows = session.scalars(
            select(TaskComment).where(TaskComment.task_id == task_id).order_by(TaskComment.id)
        )
        return [
            CommentOut(
                id=r.id, task_id=r.task_id, author=r.author, body=r.body, created_at=r.created_at
            )
            for r in rows
        ]


@router.post(
    "/{task_id}/comments",
    response_model=CommentOut,
    status_code=201,
    responses=errors(401, 403, 404, 422),
)
def add_comment(
    actor: ActorDep,
    govflow: GovflowDep,
    task_id: str,
    body: CommentIn,
) -> CommentOut:
    """Leave a note on a task for colleagues; kept with the case history."""
    with govflow.database.session() as session:
        comment = comments.add_comment(session, actor, task_id, body.body)
        return CommentOut(
            id=comment.id,
            task_id=task_id,
            author=comment.author,
            body=comment.body,
            created_at=comment.created_at,
        )
