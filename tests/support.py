"""Helpers that drive govflow the way its users do: deploy files, start cases, work tasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from engine.accounts import directory
from engine.accounts.actor import Actor
from engine.app import Govflow
from engine.runtime import commands, queries
from engine.store.models import AuditEvent, HumanTask, Instance


class GovflowHarness:
    def __init__(self, app: Govflow, workdir: Path) -> None:
        self.app = app
        self.workdir = workdir
        self.designer = self.user("designer", ["designer"])
        self.ops = self.user("ops", ["ops"])

    def user(self, username: str, roles: list[str], departments: list[str] = ()) -> Actor:
        with self.app.database.session() as session:
            if (
                session.scalars(
                    select(func.count())
                    .select_from(directory.User)
                    .where(directory.User.username == username)
                ).one()
                == 0
            ):
                directory.add_user(session, username, roles, list(departments))
        return self.app.actor(username)

    def clerk(self, username: str, *departments: str) -> Actor:
        return self.user(username, ["clerk"], list(departments))

    def write(self, name: str, content: str | bytes | dict[str, Any]) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict):
            path.write_text(json.dumps(content, ensure_ascii=False), encoding="utf-8")
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def deploy(
        self, bpmn: str, name: str = "process.bpmn", forms: dict[str, dict[str, Any]] | None = None
    ):
        paths = [self.write(name, bpmn)]
        for key, schema in (forms or {}).items():
            paths.append(self.write(f"forms/{key}.schema.json", schema))
        return self.app.deploy_paths(paths, self.designer)

    def start(self, key: str, actor: Actor | None = None, **variables: Any) -> Instance:
        business_key = variables.pop("business_key", None)
        return self.app.start(key, actor or self.designer, business_key, variables)

    def open_tasks(self, instance_id: str) -> list[HumanTask]:
        with self.app.database.session() as session:
            return list(
                session.scalars(
                    select(HumanTask)
                    .where(HumanTask.instance_id == instance_id, HumanTask.state == "open")
                    .order_by(HumanTask.element_id)
                )
            )

    def task(self, instance_id: str, element_id: str) -> HumanTask:
        matches = [t for t in self.open_tasks(instance_id) if t.element_id == element_id]
        assert matches, (
            f"no open task {element_id} in {instance_id}: {[t.element_id for t in self.open_tasks(instance_id)]}"
        )
        return matches[0]

    def worklist(self, actor: Actor, scope: str = "group") -> list[HumanTask]:
        with self.app.database.session() as session:
            return queries.list_tasks(session, actor, scope)

    def complete(self, task_id: str, actor: Actor, **data: Any) -> HumanTask:
        return self.app.runner.execute(commands.CompleteTask(task_id, data), actor)

    def claim(self, task_id: str, actor: Actor) -> HumanTask:
        return self.app.runner.execute(commands.ClaimTask(task_id), actor)

    def detail(self, instance_id: str) -> dict[str, Any]:
        with self.app.database.session() as session:
            return queries.instance_detail(session, instance_id, self.app.services.calendars.get())

    def instance(self, instance_id: str) -> Instance:
        with self.app.database.session() as session:
            row = session.get(Instance, instance_id)
            assert row is not None
            return row

    def audit_count(self, instance_id: str | None = None) -> int:
        with self.app.database.session() as session:
            query = select(func.count()).select_from(AuditEvent)
            if instance_id is not None:
                query = query.where(AuditEvent.instance_id == instance_id)
            return int(session.scalar(query) or 0)
