"""Clerks' pages: the worklist, claiming, the task page with its form, comments, files."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import select
from starlette.datastructures import UploadFile

from engine.accounts.actor import Actor
from engine.errors import GovflowError, InvalidInput, NotFound
from engine.runtime import attachments, clock, commands, comments, queries
from engine.runtime.forms import form_name, validate_submission
from engine.store.models import Attachment, Instance, TaskComment
from engine.web.common import (
    back,
    checked_form,
    error_page,
    govflow_of,
    page_actor,
    render,
    run_command,
)
from engine.web.form_fields import build_fields, errors_by_path, read_submission

router = APIRouter(include_in_schema=False)

VIEWS = {
    "queue": "本部门待办",
    "mine": "我已签收",
    "overdue": "已超期",
    "due_soon": "即将到期",
}


@router.get("/worklist", response_class=HTMLResponse)
def worklist(request: Request, view: str = "queue", q: str = "") -> HTMLResponse:
    actor = page_actor(request)
    govflow = govflow_of(request)
    view = view if view in VIEWS else "queue"
    now = clock.now()
    calendar = govflow.services.calendars.get()
    soon = queries.soon_limit(calendar, now)
    with govflow.database.read_session() as session:
        if view == "mine":
            rows = queries.list_tasks(session, actor, "mine", q=q or None)
        elif view == "overdue":
            rows = queries.list_tasks(session, actor, "group", overdue=True, q=q or None)
        elif view == "due_soon":
            rows = queries.list_tasks(session, actor, "group", due_soon_until=soon, q=q or None)
        else:
            rows = queries.list_tasks(session, actor, "group", q=q or None)
        tasks = [queries.task_to_dict(r, now, soon) for r in rows]
    return render(
        request,
        "worklist.html",
        actor,
        tasks=tasks,
        view=view,
        views=VIEWS,
        q=q,
        msg=request.query_params.get("msg"),
    )


@router.post("/worklist/next")
async def claim_next(request: Request) -> Response:
    """The "next" button (叫号): claim the soonest due unclaimed task and open it."""
    actor = page_actor(request)
    await checked_form(request)
    command = commands.ClaimNextTask(ranges=tuple(queries.queue_ranges(actor)))
    try:
        row = await run_command(request, command, actor)
    except NotFound:
        return back("/worklist", "本部门暂无待签收事项")
    except GovflowError as exc:
        return error_page(request, actor, exc)
    return back(f"/tasks/{row.id}", "已签收下一件")


@router.post("/tasks/{task_id}/{action}")
async def task_action(request: Request, task_id: str, action: str) -> Response:
    actor = page_actor(request)
    form = await checked_form(request)
    target = str(form.get("back") or f"/tasks/{task_id}")
    if not target.startswith("/") or target.startswith("//"):
        target = f"/tasks/{task_id}"
    try:
        if action == "claim":
            await run_command(request, commands.ClaimTask(task_id), actor)
            return back(target, "已签收")
        if action == "unclaim":
            await run_command(request, commands.UnclaimTask(task_id), actor)
            return back(target, "已退回本部门待办")
        if action == "comment":
            body = str(form.get("body") or "")
            return await run_in_threadpool(_comment, request, actor, task_id, body)
        if action == "complete":
            return await _complete(request, actor, task_id, form)
    except GovflowError as exc:
        return error_page(request, actor, exc)
    raise NotFound(f"no page action {action}")


def _comment(request: Request, actor: Actor, task_id: str, body: str) -> RedirectResponse:
    body = body.strip()
    if not body or len(body) > 2000:
        raise InvalidInput("a comment has 1 to 2000 characters")
    with govflow_of(request).database.session() as session:
        comments.add_comment(session, actor, task_id, body)
    return back(f"/tasks/{task_id}#comments", "已添加备注")


def _task_context(request: Request, actor: Actor, task_id: str) -> dict[str, Any]:
    govflow = govflow_of(request)
    now = clock.now()
    soon = queries.soon_limit(govflow.services.calendars.get(), now)
    with govflow.database.read_session() as session:
        row = queries.get_task(session, actor, task_id)
        instance = session.get(Instance, row.instance_id)
        assert instance is not None
        schema = None
        if row.form_key:
            version = govflow.services.versions.get(session, instance.definition_version_id)
            schema = version.forms.get(form_name(row.form_key))
        detail = queries.instance_detail(session, row.instance_id, govflow.services.calendars.get())
        comments = list(
            session.scalars(
                select(TaskComment).where(TaskComment.task_id == task_id).order_by(TaskComment.id)
            )
        )
        files = [
            {"id": a.id, "filename": a.filename, "size": a.size, "by": a.uploaded_by}
            for a in session.scalars(
                select(Attachment)
                .where(Attachment.instance_id == row.instance_id)
                .order_by(Attachment.uploaded_at)
            )
        ]
        task = queries.task_to_dict(row, now, soon)
    variables = detail["variables"]
    required = variables.get("required_materials") or []
    optional = variables.get("optional_materials") or []
    received = set(variables.get("materials_received") or [])
    checklist = [{"name": m, "required": True, "received": m in received} for m in required] + [
        {"name": m, "required": False, "received": m in received} for m in optional
    ]
    return {
        "task": task,
        "schema": schema,
        "case": detail,
        "comments": comments,
        "files": files,
        "checklist": checklist,
        "variables": variables,
        "may_complete": task["state"] == "open" and task["assignee"] in (None, actor.username),
    }


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
def task_page(request: Request, task_id: str) -> HTMLResponse:
    actor = page_actor(request)
    try:
        context = _task_context(request, actor, task_id)
    except GovflowError as exc:
        return error_page(request, actor, exc)
    fields = build_fields(context["schema"], {}, context["variables"])
    return render(
        request,
        "task.html",
        actor,
        fields=fields,
        general_errors=[],
        msg=request.query_params.get("msg"),
        **context,
    )


async def _complete(request: Request, actor: Actor, task_id: str, form: Any) -> Response:
    govflow = govflow_of(request)
    context = await run_in_threadpool(_task_context, request, actor, task_id)
    schema = context["schema"]
    pending: list[tuple[str, UploadFile]] = []

    async def hold_file(name: str, upload: UploadFile) -> dict[str, Any]:
        pending.append((name, upload))
        return {"id": "pending", "filename": upload.filename or "", "size": 0}

    data = await read_submission(schema, form, hold_file)
    problems = [e.to_dict() for e in validate_submission(schema, data)]
    stored: list[str] = []
    if not problems and pending:
        limit = govflow.settings.max_upload_bytes
        uploads = [
            (name, upload.filename or "", upload.content_type, await upload.read(limit + 1))
            for name, upload in pending
        ]
        instance_id = context["task"]["instance_id"]
        try:
            files = await run_in_threadpool(
                _store_files, govflow, actor, instance_id, task_id, uploads
            )
        except InvalidInput as exc:
            problems = list(exc.details or [])
        else:
            data.update(files)
            stored = [file["id"] for file in files.values()]
    if not problems:
        try:
            await run_command(request, commands.CompleteTask(task_id, data), actor)
            return back("/worklist", f"已办结: {context['task']['name']}")
        except InvalidInput as exc:
            problems = list(exc.details or [{"path": "$", "message": exc.message}])
            await run_in_threadpool(_forget, govflow, stored)
        except GovflowError:
            await run_in_threadpool(_forget, govflow, stored)
            raise
    by_path, general = errors_by_path(problems)
    fields = build_fields(schema, data, context["variables"], by_path)
    shown = {f.path for f in fields} | {c.path for f in fields for row in f.rows for c in row}
    general += [
        f"{p}: {m}"
        for p, m in by_path.items()
        if p not in shown and not any(p.startswith(s + "[") for s in shown)
    ]
    return render(
        request,
        "task.html",
        actor,
        status=422,
        fields=fields,
        general_errors=general,
        msg=None,
        **context,
    )


def _store_files(
    govflow: Any,
    actor: Actor,
    instance_id: str,
    task_id: str,
    uploads: list[tuple[str, str, str | None, bytes]],
) -> dict[str, dict[str, Any]]:
    """Store a completion's files (all or none) before the completion refers to them."""
    files: dict[str, dict[str, Any]] = {}
    with govflow.database.session() as session:
        for name, filename, media_type, content in uploads:
            files[name] = attachments.store(
                session,
                instance_id,
                task_id,
                filename,
                media_type,
                content,
                actor.username,
                govflow.settings.max_upload_bytes,
                name,
            )
    return files


def _forget(govflow: Any, ids: list[str]) -> None:
    """Files stored for a completion that was then refused are not kept."""
    if not ids:
        return
    with govflow.database.session() as session:
        for attachment_id in ids:
            row = session.get(Attachment, attachment_id)
            if row is not None:
                session.delete(row)


@router.get("/attachments/{attachment_id}")
def attachment(request: Request, attachment_id: str) -> Response:
    actor = page_actor(request)
    govflow = govflow_of(request)
    try:
        with govflow.database.read_session() as session:
            row = session.get(Attachment, attachment_id)
            if row is None:
                raise NotFound(f"no attachment {attachment_id}")
            queries.require_instance_visible(session, actor, row.instance_id)
            content, media_type, filename = row.content, row.media_type, row.filename
    except GovflowError as exc:
        return error_page(request, actor, exc)
    return Response(
        content=content,
        media_type=media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
        },
    )
