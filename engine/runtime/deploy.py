"""Deploying BPMN files and form schemas as versioned process definitions.

A process gets a new version only when the BPMN files it runs from, or a form one of its user
tasks uses, changed. Each version keeps its own copy of spec, sources and forms, so instances
run to the end on the version they started on while newer ones run beside them. Nothing is
stored unless every file passes lint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.accounts.actor import Actor
from engine.accounts.directory import department_names
from engine.bpmn.lint import lint_sources
from engine.bpmn.parser import START_FORM, ParsedProcess, SourceFile, parse_sources
from engine.bpmn.problems import Problem, raise_problems
from engine.bpmn.safe_xml import parse_xml_bytes
from engine.bpmn.specs import GovflowUserTask
from engine.errors import Forbidden, InvalidInput
from engine.runtime import clock
from engine.runtime.forms import form_name, schema_problem
from engine.runtime.scheduler import schedule_start_timers
from engine.runtime.serializer import spec_to_json
from engine.store.models import AuditEvent, DefinitionVersion, FormSchema, ProcessDefinition

BPMN_SUFFIXES = (".bpmn", ".bpmn20.xml", ".bpmn2")
FORM_SUFFIX = ".schema.json"


@dataclass
class DeployedProcess:
    key: str
    name: str
    version: int
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "version": self.version,
            "created": self.created,
        }


@dataclass
class DeployResult:
    processes: list[DeployedProcess] = field(default_factory=list)
    forms: list[str] = field(default_factory=list)
    changed_forms: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changed_forms) or any(p.created for p in self.processes)

    def to_dict(self) -> dict[str, Any]:
        return {"processes": [p.to_dict() for p in self.processes], "forms": self.forms}


def is_bpmn_name(name: str) -> bool:
    return name.lower().endswith(BPMN_SUFFIXES)


def is_form_name(name: str) -> bool:
    return name.lower().endswith(FORM_SUFFIX)


def collect_files(paths: Iterable[Path]) -> tuple[list[SourceFile], list[SourceFile]]:
    """BPMN files and form schemas named directly or found in the given folders."""
    bpmn: list[SourceFile] = []
    forms: list[SourceFile] = []
    for path in paths:
        if not path.exists():
            raise InvalidInput(f"{path}: no such file or folder")
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for candidate in candidates:
            name = str(candidate)
            if is_bpmn_name(name):
                bpmn.append(SourceFile(name, candidate.read_bytes()))
            elif is_form_name(name):
                forms.append(SourceFile(name, candidate.read_bytes()))
            elif not path.is_dir():
                raise InvalidInput(
                    f"{name}: not a BPMN file (*.bpmn) or form schema (*{FORM_SUFFIX})"
                )
    return bpmn, forms


def form_key_of(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return base[: -len(FORM_SUFFIX)] if base.lower().endswith(FORM_SUFFIX) else base


def read_forms(sources: Iterable[SourceFile]) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    forms: dict[str, dict[str, Any]] = {}
    problems: list[Problem] = []
    for source in sources:
        try:
            schema = json.loads(source.data.decode("utf-8"))
        except UnicodeDecodeError:
            problems.append(Problem(source.name, None, "form schema is not UTF-8 text"))
            continue
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(source.name, exc.lineno, f"not valid JSON: {exc.msg} (column {exc.colno})")
            )
            continue
        problem = schema_problem(schema)
        if problem:
            problems.append(Problem(source.name, 1, problem))
            continue
        forms[form_key_of(source.name)] = schema
    return forms, problems


def forms_in_dir(forms_dir: Path | None) -> list[SourceFile]:
    if forms_dir is None or not forms_dir.is_dir():
        return []
    return [SourceFile(str(p), p.read_bytes()) for p in sorted(forms_dir.glob(f"*{FORM_SUFFIX}"))]


def known_forms(
    session: Session, batch: dict[str, dict[str, Any]], forms_dir: Path | None
) -> tuple[dict[str, dict[str, Any]], list[Problem]]:
    """Forms available to a deploy: the batch first, then the forms folder, then deployed ones."""
    available: dict[str, dict[str, Any]] = {
        row.key: row.content for row in session.scalars(select(FormSchema))
    }
    folder, problems = read_forms(forms_in_dir(forms_dir))
    available.update(folder)
    available.update(batch)
    return available, problems


def referenced_forms(process: ParsedProcess) -> set[str]:
    keys: set[str] = set()
    for spec in [process.spec, *process.subprocess_specs.values()]:
        if spec is None:
            continue
        for task_spec in spec.task_specs.values():
            raw = None
            if isinstance(task_spec, GovflowUserTask):
                raw = task_spec.assignment.get("form_key")
            elif isinstance(getattr(task_spec, "extensions", None), dict):
                raw = task_spec.extensions.get(START_FORM)
            if raw and not raw.strip().startswith("${"):
                keys.add(form_name(raw))
    return keys


def _source_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        root = parse_xml_bytes(data, "source")  # repairs a wrongly declared encoding
        return etree.tostring(root, encoding="unicode")


def content_hash(process: ParsedProcess, files: dict[str, bytes], forms: dict[str, Any]) -> str:
    payload = {
        "files": sorted(hashlib.sha256(files[name]).hexdigest() for name in process.files),
        "forms": forms,
    }
    encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()


def lint(
    session: Session,
    bpmn: list[SourceFile],
    form_files: list[SourceFile],
    forms_dir: Path | None,
    max_bytes: int | None = None,
) -> list[Problem]:
    batch, problems = read_forms(form_files)
    available, folder_problems = known_forms(session, batch, forms_dir)
    problems.extend(folder_problems)
    problems.extend(
        lint_sources(bpmn, set(available), department_names(session), max_bytes=max_bytes)
    )
    return problems


def deploy(
    session: Session,
    actor: Actor,
    bpmn: list[SourceFile],
    form_files: list[SourceFile],
    forms_dir: Path | None,
    max_bytes: int | None = None,
) -> DeployResult:
    if not actor.has_role("designer", "admin"):
        raise Forbidden("deploying needs the designer or admin role")
    if not bpmn and not form_files:
        raise InvalidInput("nothing to deploy: give BPMN files (*.bpmn) or form schemas")
    batch, problems = read_forms(form_files)
    available, folder_problems = known_forms(session, batch, forms_dir)
    problems.extend(folder_problems)
    departments = department_names(session)
    problems.extend(lint_sources(bpmn, set(available), departments, max_bytes=max_bytes))
    raise_problems(
        problems, f"{len(problems)} problem(s) found; nothing was deployed" if problems else None
    )
    bundle = parse_sources(bpmn, departments, max_bytes)
    raise_problems(bundle.problems)
    files = {source.name: source.data for source in bpmn}
    result = DeployResult()
    now = clock.now()
    for key, schema in sorted(batch.items()):
        digest = hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()
        row = session.get(FormSchema, key)
        if row is None:
            session.add(FormSchema(key=key, content=schema, content_hash=digest, updated_at=now))
            result.changed_forms.append(key)
        elif row.content_hash != digest:
            row.content, row.content_hash, row.updated_at = schema, digest, now
            result.changed_forms.append(key)
        result.forms.append(key)
    for process_id in sorted(bundle.processes):
        process = bundle.processes[process_id]
        forms = {k: available[k] for k in sorted(referenced_forms(process)) if k in available}
        digest = content_hash(process, files, forms)
        result.processes.append(_store_version(session, actor, process, files, forms, digest, now))
    session.add(
        AuditEvent(
            at=now,
            actor=actor.username,
            command="deploy",
            details={**result.to_dict(), "files": sorted(files)},
        )
    )
    session.flush()
    return result


def _store_version(
    session: Session,
    actor: Actor,
    process: ParsedProcess,
    files: dict[str, bytes],
    forms: dict[str, Any],
    digest: str,
    now: Any,
) -> DeployedProcess:
    definition = session.scalars(
        select(ProcessDefinition).where(ProcessDefinition.key == process.process_id)
    ).first()
    if definition is None:
        definition = ProcessDefinition(
            key=process.process_id, name=process.name, latest_version=0, created_at=now
        )
        session.add(definition)
        session.flush()
    existing = session.scalars(
        select(DefinitionVersion).where(
            DefinitionVersion.definition_id == definition.id,
            DefinitionVersion.content_hash == digest,
        )
    ).first()
    if existing is not None:
        return DeployedProcess(process.process_id, definition.name, existing.version, False)
    definition.latest_version += 1
    definition.name = process.name
    version = DefinitionVersion(
        definition_id=definition.id,
        version=definition.latest_version,
        content_hash=digest,
        sources={name: _source_text(files[name]) for name in process.files},
        forms=forms,
        spec=spec_to_json(process.spec, process.subprocess_specs),
        deployed_at=now,
        deployed_by=actor.username,
    )
    session.add(version)
    session.flush()
    schedule_start_timers(session, version, process.spec, now)
    return DeployedProcess(process.process_id, process.name, definition.latest_version, True)
