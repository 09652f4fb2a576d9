"""Delivering a message from outside to the case waiting for it, or starting one.

Correlation follows Camunda: the message name picks the waiting catch events (or message start
events); an optional correlation key narrows them to the case with that business key. A message
that matches several waiting cases is refused rather than delivered to an arbitrary one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.start_event import StartEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.accounts.actor import Actor
from engine.errors import Conflict, InvalidInput, NotFound
from engine.runtime.projections import jsonable
from engine.runtime.runner import CommandContext, Runner
from engine.runtime.sandbox import storable_problem
from engine.store.models import DefinitionVersion, Instance, MessageSubscription, ProcessDefinition


def message_event(name: str, payload: dict[str, Any]) -> BpmnEvent:
    return BpmnEvent(MessageEventDefinition(name), payload=dict(payload))


@dataclass
class CorrelateMessage:
    instance_id: str
    message_name: str
    payload: dict[str, Any] = field(default_factory=dict)
    name = "message"
    needs_workflow = True
    allowed_when_suspended = False
    allowed_when_ended = False

    def instance_id_for(self, session: Session) -> str:
        return self.instance_id

    def apply(self, ctx: CommandContext) -> None:
        event = message_event(self.message_name, self.payload)
        event.correlations = _correlations(ctx.workflow, self.message_name, self.payload)
        if ctx.workflow.event_manager.catch(event, internal=False) == 0:
            raise Conflict(
                f"instance {ctx.instance.id} is not waiting for message {self.message_name!r}"
            )
        ctx.audit_data = {"name": self.message_name, "payload": jsonable(self.payload)}


def _correlations(workflow: Any, name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The correlation keys a message from outside carries, read from its payload by the
    retrieval expressions of the catch events waiting for it (BPMN correlation properties:
    the case that sent `lover_name='Peggy'` takes the response whose `from_name` is Peggy)."""
    engine = workflow.script_engine
    correlations: dict[str, Any] = {}
    for task in workflow.get_tasks(state=TaskState.WAITING):
        definition = getattr(task.task_spec, "event_definition", None)
        definitions = (
            definition.event_definitions
            if isinstance(definition, MultipleEventDefinition)
            else [definition]
        )
        for candidate in definitions:
            if not isinstance(candidate, MessageEventDefinition) or candidate.name != name:
                continue
            for prop in candidate.correlation_properties:
                try:
                    found = candidate.calculate_correlations(engine, [prop], payload)
                except Exception:  # the payload lacks what this property reads
                    continue
                for key, values in found.items():
                    correlations.setdefault(key, {}).update(values)
    return correlations


@dataclass
class Delivery:
    instance_id: str
    started: bool


def _starts_on(spec: Any, name: str) -> bool:
    """A message start event for `name`, alone or among the definitions of a start event
    with several (BPMN's multiple start event: any one of them starts the process; a
    parallel one then waits in the new case for the others, which it subscribes to)."""
    if not isinstance(spec, StartEvent):
        return False
    event = getattr(spec, "event_definition", None)
    definitions = event.event_definitions if isinstance(event, MultipleEventDefinition) else [event]
    return any(isinstance(d, MessageEventDefinition) and d.name == name for d in definitions)


def _starting_definitions(session: Session, runner: Runner, name: str) -> list[str]:
    keys = []
    for definition in session.scalars(select(ProcessDefinition).order_by(ProcessDefinition.key)):
        row = session.scalars(
            select(DefinitionVersion.id).where(
                DefinitionVersion.definition_id == definition.id,
                DefinitionVersion.version == definition.latest_version,
            )
        ).first()
        if row is None:
            continue
        loaded = runner.services.versions.get(session, row)
        if any(_starts_on(spec, name) for spec in loaded.spec.task_specs.values()):
            keys.append(definition.key)
    return keys


def deliver(
    runner: Runner,
    actor: Actor,
    name: str,
    payload: dict[str, Any] | None = None,
    correlation_key: str | None = None,
) -> Delivery:
    payload = dict(payload or {})
    if not name.strip():
        raise InvalidInput(
            "a message needs a name", [{"path": "$.name", "message": "must not be empty"}]
        )
    for key, value in payload.items():
        problem = storable_problem(value, key)
        if problem:
            raise InvalidInput(problem, [{"path": f"$.payload.{key}", "message": problem}])
    with runner.services.database.read_session() as session:
        query = (
            select(MessageSubscription.instance_id)
            .join(Instance, Instance.id == MessageSubscription.instance_id)
            .where(
                MessageSubscription.message_name == name,
                Instance.status.in_(("running", "waiting", "error")),
            )
            .distinct()
        )
        if correlation_key is not None:
            query = query.where(Instance.business_key == correlation_key)
        waiting = list(session.scalars(query))
        starters = [] if waiting else _starting_definitions(session, runner, name)
    if len(waiting) > 1:
        raise Conflict(
            f"message {name!r} matches {len(waiting)} waiting cases; "
            "give a correlation_key (the case's business key)",
            {"instances": sorted(waiting)[:20]},
        )
    if waiting:
        runner.execute(CorrelateMessage(waiting[0], name, payload), actor)
        return Delivery(waiting[0], False)
    if len(starters) > 1:
        raise Conflict(f"message {name!r} starts several processes: {', '.join(starters)}")
    if not starters:
        raise NotFound(f"no case is waiting for message {name!r} and no process starts on it")
    instance = runner.start(
        starters[0], actor, business_key=correlation_key, message=message_event(name, payload)
    )
    return Delivery(instance.id, True)
