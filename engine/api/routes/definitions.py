"""Process definitions: list, deploy (multipart upload), lint, versions and their BPMN."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, Response, UploadFile
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.api.deps import ActorDep, DesignerDep, GovflowDep
from engine.api.routes import MAX_ID, errors
from engine.api.schemas import DefinitionDetailOut, DefinitionOut, DeployOut, LintOut, VersionOut
from engine.bpmn.parser import SourceFile
from engine.errors import InvalidInput, NotFound
from engine.runtime import deploy as deploy_service
from engine.store.models import DefinitionVersion, Instance, ProcessDefinition

router = APIRouter(prefix="/api/definitions", tags=["definitions"])


def _read_uploads(
    files: list[UploadFile],
    limit: int,
) -> tuple[list[SourceFile], list[SourceFile]]:
    bpmn: list[SourceFile] = []
    forms: list[SourceFile] = []
    for upload in files:
        name = PurePosixPath((upload.filename or "").replace("\\", "/")).name
        if not name or name in (".", ".."):
            raise InvalidInput(
                "an uploaded file has no name", [{"path": "files", "message": "missing file name"}]
            )
        data = upload.file.read(limit + 1)
        if len(data) > limit:
            raise InvalidInput(
                f"{name} is larger than {limit} bytes",
                [{"path": f"files[{name}]", "message": "too large"}],
            )
        if deploy_service.is_bpmn_name(name):
            bpmn.append(SourceFile(name, data))
        elif deploy_service.is_form_name(name):
            forms.append(SourceFile(name, data))
        else:
            raise InvalidInput(
                f"{name}: only BPMN files (*.bpmn) and form schemas (*.schema.json) "
                "can be uploaded",
                [{"path": f"files[{name}]", "message": "unsupported file type"}],
            )
    return bpmn, forms


@router.get("", response_model=list[DefinitionOut], responses=errors(401))
def list_definitions(
    actor: ActorDep,
    govflow: GovflowDep,
) -> list[DefinitionOut]:
    with govflow.database.read_session() as session:
        rows = session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.key))
        return [
            DefinitionOut(key=r.key, name=r.name, latest_version=r.latest_version) for r in rows
        ]


@router.post("", response_model=DeployOut, status_code=201, responses=errors(401, 403, 422))
def deploy(
    actor: DesignerDep,
    govflow: GovflowDep,
    response: Response,
    files: Annotated[list[UploadFile], File(description="BPMN files and *.schema.json forms")],
) -> DeployOut:
    """Deploy BPMN files and form schemas. 422 lists every lint problem as {file, line, message};
    nothing is stored then. 201 when a new version was made, 200 when nothing changed."""
    bpmn, forms = _read_uploads(files, govflow.settings.bpmn_max_bytes)
    with govflow.database.session() as session:
        result = deploy_service.deploy(
            session, actor, bpmn, forms, govflow.settings.forms_dir, govflow.settings.bpmn_max_bytes
        )
    if not result.changed:
        response.status_code = 200
    return DeployOut.model_validate(result.to_dict())


@router.post("/lint", response_model=LintOut, responses=errors(401, 403, 422))
def lint(
    actor: DesignerDep,
    govflow: GovflowDep,
    files: Annotated[list[UploadFile], File()],
) -> LintOut:
    """Check files without deploying them; an empty list means they would deploy."""
    bpmn, forms = _read_uploads(files, govflow.settings.bpmn_max_bytes)
    with govflow.database.read_session() as session:
        problems = deploy_service.lint(
            session, bpmn, forms, govflow.settings.forms_dir, govflow.settings.bpmn_max_bytes
        )
    return LintOut.model_validate({"problems": [p.to_dict() for p in problems]})


def _definition(
    session: Session,
    key: str,
) -> ProcessDefinition:
    row = session.scalars(select(ProcessDefinition).where(ProcessDefinition.key == key)).first()
    if row is None:
        raise NotFound(f"no process definition {key!r}")
    return row


@router.get("/{key}", response_model=DefinitionDetailOut, responses=errors(401, 404))
def get_definition(
    actor: ActorDep,
    govflow: GovflowDep,
    key: str,
) -> DefinitionDetailOut:
    with govflow.database.read_session() as session:
        definition = _definition(session, key)
        counts = dict(
            session.execute(
                select(Instance.definition_version, func.count())
                .where(Instance.definition_key == key)
                .group_by(Instance.definition_version)
            ).all()
        )
        versions = session.scalars(
            select(DefinitionVersion)
            .where(DefinitionVersion.definition_id == definition.id)
            .order_by(DefinitionVersion.version.desc())
        )
        return DefinitionDetailOut(
            key=definition.key,
            name=definition.name,
            latest_version=definition.latest_version,
            versions=[
                VersionOut(
                    version=v.version,
                    deployed_at=v.deployed_at,
                    deployed_by=v.deployed_by,
                    content_hash=v.content_hash,
                    files=sorted(v.sources),
                    forms=sorted(v.forms),
                    instances=int(counts.get(v.version, 0)),
                )
                for v in versions
            ],
        )


@router.get(
    "/{key}/versions/{version}/bpmn",
    response_class=Response,
    responses={
        200: {"content": {"application/xml": {}}, "description": "the BPMN file"},
        **errors(401, 404),
    },
)
def get_bpmn(
    actor: ActorDep,
    govflow: GovflowDep,
    key: str,
    version: Annotated[int, Path(ge=1, le=MAX_ID)],
    file: Annotated[str | None, Query(description="another file of this version")] = None,
) -> Response:
    """The BPMN XML a version was deployed from (the file holding the process, by default)."""
    with govflow.database.read_session() as session:
        definition = _definition(session, key)
        row = session.scalars(
            select(DefinitionVersion).where(
                DefinitionVersion.definition_id == definition.id,
                DefinitionVersion.version == version,
            )
        ).first()
        if row is None:
            raise NotFound(f"process {key!r} has no version {version}")
        sources = dict(row.sources)
        main = file or _main_file(row.spec, sources)
        if main not in sources:
            raise NotFound(f"version {version} of {key!r} has no file {main!r}")
        text = sources[main]
    return Response(content=text.encode("utf-8"), media_type="application/xml; charset=utf-8")


def _main_file(
    spec_json: str,
    sources: dict[str, str],
) -> str:
    name = json.loads(spec_json).get("spec", {}).get("file")
    if name in sources:
        return name
    return sorted(sources)[0]
