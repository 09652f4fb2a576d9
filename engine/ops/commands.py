"""Ops repairs on one case: move a token, edit variables, migrate to another version.

Each goes through the runner like any command (fenced, audited with its reason) and needs
the ops or admin role and a reason, because it changes a case outside its process.
"""

from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import Conflict, Forbidden, InvalidInput, NotFound
from engine.ops.migration import migration_problem, predict_again, without_predictions
from engine.runtime import projections
from engine.runtime.projections import all_tasks, element_id, jsonable
from engine.runtime.runner import CommandContext
from engine.runtime.sandbox import storable_problem
from engine.runtime.serializer import load_workflow
from engine.store.models import DefinitionVersion, Incident, ProcessDefinition

MOVABLE = TaskState.READY | TaskState.WAITING | TaskState.STARTED | TaskState.ERROR


def _require_ops_with_reason(ctx: CommandContext, name: str, reason: str) -> None:
    if not ctx.actor.has_role("ops", "admin"):
        raise Forbidden(f"{name} needs the ops or admin role")
    if not reason.strip():
        raise InvalidInput(
            f"{name} changes a case outside its process: give a reason",
            [{"path": "$.reason", "message": "required"}],
        )


@dataclass
class _OpsCommand:
    instance_id: str
    reason: str = ""
    needs_workflow = True
    allowed_when_suspended = True
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        return self.instance_id


def _token_at(ctx: CommandContext, element: str) -> list[Task]:
    return [
        t
        for t in all_tasks(ctx.workflow)
        if element_id(t) == element
        and t._state & MOVABLE
        and not isinstance(t.task_spec, BoundaryEventSplit)
    ]


@dataclass
class MoveToken(_OpsCommand):
    """Leave element A (its token is cancelled) and enter element B of the same process."""

    source: str = ""
    target: str = ""
    name = "move_token"

    def apply(self, ctx: CommandContext) -> list[str]:
        _require_ops_with_reason(ctx, "moving a token", self.reason)
        tokens = _token_at(ctx, self.source)
        if not tokens:
            active = sorted(
                {element_id(t) or "" for t in all_tasks(ctx.workflow) if t._state & MOVABLE} - {""}
            )
            raise Conflict(
                f"no token is at {self.source!r}; active elements: {', '.join(active) or 'none'}"
            )
        moved: list[str] = []
        for token in tokens:
            moved.append(self._move(ctx, token))
        ctx.audit_element_id = self.target
        if ctx.instance.status == "suspended":
            ctx.forced_status = "suspended"
        ctx.audit_data = {"from": self.source, "to": self.target, "reason": self.reason}
        ctx.audit_details["tokens"] = len(moved)
        return moved

    def _move(self, ctx: CommandContext, token: Task) -> str:
        specs = token.workflow.spec.task_specs
        target = specs.get(f"{self.target}.BoundaryEventSplit") or next(
            (s for s in specs.values() if getattr(s, "bpmn_id", None) == self.target), None
        )
        if target is None:
            raise InvalidInput(
                f"element {self.target!r} is not in the process that holds {self.source!r} "
                f"({token.workflow.spec.name})",
                [{"path": "$.target", "message": "no such element in this (sub)process"}],
            )
        anchor = token
        if token.parent is not None and isinstance(token.parent.task_spec, BoundaryEventSplit):
            anchor = token.parent  # leave the activity together with its boundary events
        data = deepcopy(token.data)
        anchor.cancel()  # a finished split cancels its children: the activity and its events
        if token._state & TaskState.FINISHED_MASK and token._state != TaskState.CANCELLED:
            token._set_state(TaskState.CANCELLED)  # a failed element
            token._drop_children(force=True)
        # history pruning may have dropped the anchor's parent; the new token then hangs
        # under the cancelled anchor, which is as good a place in the tree
        parent = anchor.parent if anchor.parent is not None else anchor
        for incident in ctx.session.scalars(
            select(Incident).where(
                Incident.instance_id == ctx.instance.id,
                Incident.task_id == str(token.id),
                Incident.resolved_at.is_(None),
            )
        ):
            incident.resolved_at = ctx.now
            incident.resolved_by = f"{ctx.actor.username} (token moved)"
        entered = parent._add_child(target, TaskState.FUTURE)
        entered.data = data
        # as SpiffWorkflow's own reset_branch does: predict the paths ahead, then update
        target._predict(entered, mask=TaskState.PREDICTED_MASK | TaskState.FUTURE)
        target._update(entered)
        entered.data = data
        return str(entered.id)


@dataclass
class SetVariables(_OpsCommand):
    """Change case data: set some variables, remove others, on every open branch."""

    values: dict[str, Any] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)
    name = "edit_variables"

    def apply(self, ctx: CommandContext) -> dict[str, Any]:
        _require_ops_with_reason(ctx, "editing variables", self.reason)
        if not self.values and not self.remove:
            raise InvalidInput("nothing to change: give values or remove")
        for key, value in self.values.items():
            if not key.isidentifier():
                raise InvalidInput(
                    f"{key!r} is not a variable name",
                    [{"path": f"$.values.{key}", "message": "not a name"}],
                )
            problem = storable_problem(value, key)
            if problem:
                raise InvalidInput(problem, [{"path": f"$.values.{key}", "message": problem}])
        workflow = ctx.workflow
        before = projections.current_variables(workflow)
        unknown = [k for k in self.remove if k not in before]
        if unknown:
            raise InvalidInput(
                f"the case has no variable {unknown[0]!r}",
                [{"path": "$.remove", "message": f"unknown: {', '.join(unknown)}"}],
            )
        holders = [t for t in all_tasks(workflow) if t._state & MOVABLE]
        if workflow.last_task is not None:
            holders.append(workflow.last_task)
        for task in holders:
            task.data.update(deepcopy(self.values))
            for key in self.remove:
                task.data.pop(key, None)
        ctx.run_steps = False
        if ctx.instance.status == "suspended":
            ctx.forced_status = "suspended"
        ctx.audit_data = {
            "set": jsonable(self.values),
            "removed": list(self.remove),
            "reason": self.reason,
        }
        ctx.audit_details["previous"] = jsonable(
            {k: before.get(k) for k in [*self.values, *self.remove]}
        )
        return projections.current_variables(workflow)


def target_version(session: Session, definition_key: str, version: int) -> DefinitionVersion:
    row = session.scalars(
        select(DefinitionVersion)
        .join(ProcessDefinition, ProcessDefinition.id == DefinitionVersion.definition_id)
        .where(ProcessDefinition.key == definition_key, DefinitionVersion.version == version)
    ).first()
    if row is None:
        raise NotFound(f"process {definition_key!r} has no version {version}")
    return row


@dataclass
class MigrateInstance(_OpsCommand):
    """Move the case onto another version of its process (see engine.ops.migration)."""

    to_version: int = 0
    name = "migrate"
    needs_workflow = False

    def apply(self, ctx: CommandContext) -> int:
        _require_ops_with_reason(ctx, "migrating a case", self.reason)
        instance = ctx.instance
        row = target_version(ctx.session, instance.definition_key, self.to_version)
        if row.id == instance.definition_version_id:
            raise Conflict(f"instance {instance.id} is already on version {self.to_version}")
        target = ctx.services.versions.get(ctx.session, row.id)
        problem = migration_problem(instance.document, target)
        if problem:
            raise Conflict(f"instance {instance.id} cannot move: {problem}")
        workflow = load_workflow(
            without_predictions(instance.document),
            target.spec,
            target.subprocess_specs,
            ctx.services.script_engine,
        )
        predict_again(workflow)
        previous = instance.definition_version
        instance.definition_version_id = row.id
        instance.definition_version = row.version
        ctx.use_workflow(workflow)
        if instance.status == "suspended":
            ctx.forced_status = "suspended"
        ctx.audit_data = {"from": previous, "to": row.version, "reason": self.reason}
        return row.version
