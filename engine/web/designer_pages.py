"""Designers' pages: processes and versions, upload with lint problems by line, diagrams."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from sqlalchemy import func, select
from starlette.datastructures import UploadFile

from engine.accounts.actor import Actor
from engine.api.routes.definitions import _read_uploads
from engine.app import Govflow
from engine.errors import BpmnProblems, Forbidden, GovflowError, InvalidInput, NotFound
from engine.runtime import deploy as deploy_service
from engine.store.models import DefinitionVersion, Instance, ProcessDefinition
from engine.web.common import checked_form, error_page, govflow_of, page_actor, render
from engine.web.diagrams import process_counts, version_svg

router = APIRouter(include_in_schema=False)


def _definitions(request: Request) -> list[dict[str, Any]]:
    with govflow_of(request).database.read_session() as session:
        counts: dict[tuple[str, int], int] = {
            (k, v): c
            for k, v, c in session.execute(
                select(Instance.definition_key, Instance.definition_version, func.count()).group_by(
                    Instance.definition_key, Instance.definition_version
                )
            )
        }
        out = []
        for d in session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.key)):
            versions = session.scalars(
                select(DefinitionVersion.version)
                .where(DefinitionVersion.definition_id == d.id)
                .order_by(DefinitionVersion.version.desc())
            ).all()
            out.append(
                {
                    "key": d.key,
                    "name": d.name,
                    "latest": d.latest_version,
                    "versions": [(v, counts.get((d.key, v), 0)) for v in versions],
                }
            )
        return out


@router.get("/designer", response_class=HTMLResponse)
def designer(request: Request) -> HTMLResponse:
    actor = page_actor(request)
    return render(
        request,
        "designer.html",
        actor,
        definitions=_definitions(request),
        problems=[],
        result=None,
        may_deploy=actor.has_role("designer", "admin"),
        msg=request.query_params.get("msg"),
    )


def _lint_or_deploy(
    govflow: Govflow, actor: Actor, lint_only: bool, bpmn: Any, forms: Any
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    settings = govflow.settings
    with govflow.database.session() as session:
        if lint_only:
            found = deploy_service.lint(
                session, bpmn, forms, settings.forms_dir, settings.bpmn_max_bytes
            )
            return [p.to_dict() for p in found], {"lint_only": True}
        deployed = deploy_service.deploy(
            session, actor, bpmn, forms, settings.forms_dir, settings.bpmn_max_bytes
        )
        return [], deployed.to_dict()


@router.post("/designer/upload", response_class=HTMLResponse)
async def upload(request: Request) -> Response:
    actor = page_actor(request)
    form = await checked_form(request)
    govflow = govflow_of(request)
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    problems: list[dict[str, Any]] = []
    result = None
    try:
        if not actor.has_role("designer", "admin"):
            raise Forbidden("deploying needs the designer or admin role")
        if not files:
            raise InvalidInput("choose at least one .bpmn or .schema.json file")
        bpmn, forms = _read_uploads(files, govflow.settings.bpmn_max_bytes)  # type: ignore[arg-type]
        # parsing, linting and deploying take a while: in a worker thread, not on the event
        # loop, where they would hold up the clerks' requests to this process meanwhile
        problems, result = await run_in_threadpool(
            _lint_or_deploy, govflow, actor, form.get("mode") == "lint", bpmn, forms
        )
    except (InvalidInput, BpmnProblems) as exc:
        details = exc.details if isinstance(exc.details, list) else []
        problems = [d for d in details if isinstance(d, dict)] or [
            {"file": "", "line": None, "message": exc.message}
        ]
    except GovflowError as exc:
        return error_page(request, actor, exc)
    return render(
        request,
        "designer.html",
        actor,
        status=422 if problems else 200,
        definitions=_definitions(request),
        problems=problems,
        result=result,
        may_deploy=True,
        msg=None,
    )


@router.get("/designer/{key}", response_class=HTMLResponse)
def definition_page(request: Request, key: str, version: int | None = None) -> HTMLResponse:
    actor = page_actor(request)
    govflow = govflow_of(request)
    try:
        with govflow.database.read_session() as session:
            definition = session.scalars(
                select(ProcessDefinition).where(ProcessDefinition.key == key)
            ).first()
            if definition is None:
                raise NotFound(f"no process definition {key!r}")
            wanted = version or definition.latest_version
            row = session.scalars(
                select(DefinitionVersion).where(
                    DefinitionVersion.definition_id == definition.id,
                    DefinitionVersion.version == wanted,
                )
            ).first()
            if row is None:
                raise NotFound(f"process {key!r} has no version {wanted}")
            counts = process_counts(session, key, wanted)
            svg, why = version_svg(session, row.id, None, counts)
    except GovflowError as exc:
        return error_page(request, actor, exc)
    entry = next((d for d in _definitions(request) if d["key"] == key), None)
    return render(
        request,
        "definition.html",
        actor,
        definition=entry,
        version=wanted,
        svg=svg,
        why=why,
        counts=sorted(counts.items(), key=lambda kv: -kv[1]),
    )


@router.get("/designer/{key}/{version}/diagram.svg")
def diagram_svg(request: Request, key: str, version: int) -> Response:
    actor = page_actor(request)
    govflow = govflow_of(request)
    with govflow.database.read_session() as session:
        row = session.scalars(
            select(DefinitionVersion)
            .join(ProcessDefinition, ProcessDefinition.id == DefinitionVersion.definition_id)
            .where(ProcessDefinition.key == key, DefinitionVersion.version == version)
        ).first()
        if row is None:
            return error_page(request, actor, NotFound(f"process {key!r} has no version {version}"))
        svg, why = version_svg(session, row.id, None, process_counts(session, key, version))
    if svg is None:
        return Response(why or "", status_code=404, media_type="text/plain; charset=utf-8")
    return Response(svg, media_type="image/svg+xml")
