"""Ops pages: the dashboard, the case page with its diagram, and the repairs."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select

from engine.errors import Forbidden, GovflowError, NotFound
from engine.ops import stuck
from engine.ops.commands import MoveToken
from engine.runtime import calendar_ops, clock, clocks, commands, queries
from engine.store.models import Incident, Instance, SlaClock
from engine.web.common import (
    back,
    checked_form,
    error_page,
    govflow_of,
    page_actor,
    render,
    run_command,
)
from engine.web.diagrams import instance_states, version_svg

router = APIRouter(include_in_schema=False)


def _require_ops(actor: object) -> None:
    if not actor.has_role("ops", "admin"):
        raise Forbidden("this page is for ops staff")


@router.get("/ops", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    actor = page_actor(request)
    govflow = govflow_of(request)
    try:
        _require_ops(actor)
    except GovflowError as exc:
        return error_page(request, actor, exc)
    now = clock.now()
    calendar = govflow.services.calendars.get()
    with govflow.database.read_session() as session:
        by_state: dict[str, dict[str, int]] = {}
        states: set[str] = set()
        for key, status, count in session.execute(
            select(Instance.definition_key, Instance.status, func.count()).group_by(
                Instance.definition_key, Instance.status
            )
        ):
            by_state.setdefault(key, {})[status] = count
            states.add(status)
        incidents = list(
            session.scalars(
                select(Incident)
                .where(Incident.resolved_at.is_(None))
                .order_by(Incident.id.desc())
                .limit(50)
            )
        )
        found = stuck.detect(
            session, now, calendar, stuck.Thresholds.from_settings(govflow.settings), limit=50
        )
        overdue = session.scalar(
            select(func.count(func.distinct(SlaClock.instance_id))).where(
                clocks.overdue_filter(calendar, now)
            )
        )
    order = ["running", "waiting", "error", "suspended", "completed", "cancelled"]
    return render(
        request,
        "ops.html",
        actor,
        by_state=by_state,
        states=[s for s in order if s in states] + sorted(states - set(order)),
        incidents=incidents,
        stuck=found,
        overdue=overdue or 0,
        provisional=calendar_ops.provisional_summary(govflow),
        msg=request.query_params.get("msg"),
    )


@router.get("/cases/{instance_id}", response_class=HTMLResponse)
def case_page(request: Request, instance_id: str) -> HTMLResponse:
    actor = page_actor(request)
    govflow = govflow_of(request)
    try:
        with govflow.database.read_session() as session:
            queries.require_instance_visible(session, actor, instance_id)
            detail = queries.instance_detail(session, instance_id, govflow.services.calendars.get())
            row = session.get(Instance, instance_id)
            assert row is not None
            svg, why = version_svg(
                session, row.definition_version_id, instance_states(session, instance_id)
            )
    except GovflowError as exc:
        return error_page(request, actor, exc)
    return render(
        request,
        "case.html",
        actor,
        case=detail,
        svg=svg,
        why=why,
        is_ops=actor.has_role("ops", "admin"),
        msg=request.query_params.get("msg"),
    )


@router.post("/cases/{instance_id}/{action}")
async def case_action(request: Request, instance_id: str, action: str) -> Response:
    actor = page_actor(request)
    form = await checked_form(request)
    reason = str(form.get("reason") or "").strip()
    simple = {
        "cancel": commands.CancelInstance,
        "suspend": commands.SuspendInstance,
        "resume": commands.ResumeInstance,
    }
    try:
        if action in simple:
            await run_command(request, simple[action](instance_id, reason), actor)
        elif action == "move":
            await run_command(
                request,
                MoveToken(
                    instance_id,
                    reason,
                    str(form.get("source") or ""),
                    str(form.get("target") or ""),
                ),
                actor,
            )
        else:
            raise NotFound(f"no case action {action}")
    except GovflowError as exc:
        return error_page(request, actor, exc)
    return back(f"/cases/{instance_id}", "已执行")


@router.post("/incidents/{incident_id}/retry")
async def retry(request: Request, incident_id: int) -> Response:
    actor = page_actor(request)
    form = await checked_form(request)
    try:
        await run_command(
            request, commands.RetryIncident(incident_id, str(form.get("reason") or "")), actor
        )
    except GovflowError as exc:
        return error_page(request, actor, exc)
    target = str(form.get("back") or "/ops")
    return back(
        target if target.startswith("/") and not target.startswith("//") else "/ops",
        f"事件 #{incident_id} 已重试",
    )
