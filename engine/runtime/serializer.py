"""How specs and live instance documents are stored.

- A process spec is serialized once per deployed definition version with SpiffWorkflow's own
  converters (extended for govflow's task specs) and cached in memory after its first load.
- An instance document holds the task tree and data but not the spec, in govflow's own format.
  Case data is written with an explicit tagged encoding (`{"$dt": ...}` for datetimes, `$esc`
  for user dicts whose keys start with `$`), so nothing a user types can be mistaken for an
  internal object: SpiffWorkflow 3.2.0 fails to load any data dict with a `typename` key.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.serializer.default.event_definition import MessageEventDefinitionConverter
from SpiffWorkflow.bpmn.serializer.default.task_spec import (
    BpmnTaskSpecConverter,
    MultiInstanceTaskConverter,
)
from SpiffWorkflow.bpmn.serializer.helpers.registry import DefaultRegistry
from SpiffWorkflow.bpmn.serializer.helpers.spec import TaskSpecConverter
from SpiffWorkflow.bpmn.serializer.workflow import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.specs.bpmn_process_spec import BpmnProcessSpec
from SpiffWorkflow.bpmn.specs.event_definitions.message import MessageEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.event_types import CatchingEvent
from SpiffWorkflow.bpmn.specs.mixins.subworkflow_task import SubWorkflowTask
from SpiffWorkflow.bpmn.util.subworkflow import BpmnSubWorkflow
from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.camunda.specs.event_definitions import (
    MessageEventDefinition as CamundaMessageEventDefinition,
)
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState

from engine.bpmn.compat import (
    CaseDataStore,
    CaseDataStoreConverter,
    StandardParallelMI,
    StandardSequentialMI,
)
from engine.bpmn.specs import (
    GovflowServiceTask,
    GovflowUserTask,
    PassThroughManualTask,
    PassThroughTask,
)

DOCUMENT_FORMAT = 1


class SafeRegistry(DefaultRegistry):
    """Spiff's registry, but a dict with an unknown `typename` stays a dict."""

    def __init__(self) -> None:
        super().__init__()
        self.register(
            date, lambda v: {"value": v.isoformat()}, lambda v: date.fromisoformat(v["value"])
        )

    def restore(self, val: Any, **kwargs: Any) -> Any:
        if (
            isinstance(val, dict)
            and "typename" in val
            and val["typename"] not in self.convert_from_dict
        ):
            return {k: self.restore(v, **kwargs) for k, v in val.items()}
        return super().restore(val, **kwargs)


class GovflowUserTaskConverter(TaskSpecConverter):
    def to_dict(self, spec: GovflowUserTask) -> dict[str, Any]:
        dct = self.get_default_attributes(spec)
        dct["assignment"] = dict(spec.assignment)
        return dct

    def from_dict(self, dct: dict[str, Any]) -> GovflowUserTask:
        return self.task_spec_from_dict(dct)


class GovflowServiceTaskConverter(TaskSpecConverter):
    def to_dict(self, spec: GovflowServiceTask) -> dict[str, Any]:
        dct = self.get_default_attributes(spec)
        dct["topic"] = spec.topic
        return dct

    def from_dict(self, dct: dict[str, Any]) -> GovflowServiceTask:
        return self.task_spec_from_dict(dct)


def _build_registry() -> SafeRegistry:
    config = dict(CAMUNDA_CONFIG)
    config.pop(CamundaMessageEventDefinition, None)
    config[MessageEventDefinition] = MessageEventDefinitionConverter
    config[GovflowUserTask] = GovflowUserTaskConverter
    config[GovflowServiceTask] = GovflowServiceTaskConverter
    config[PassThroughTask] = BpmnTaskSpecConverter
    config[PassThroughManualTask] = BpmnTaskSpecConverter
    config[CaseDataStore] = CaseDataStoreConverter
    config[StandardSequentialMI] = MultiInstanceTaskConverter
    config[StandardParallelMI] = MultiInstanceTaskConverter
    registry = SafeRegistry()
    BpmnWorkflowSerializer.configure(config, registry)
    return registry


REGISTRY = _build_registry()


# --- case data -------------------------------------------------------------------------------


def encode_value(value: Any) -> Any:
    """Case data as plain JSON with tagged dates, decimals and UUIDs."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        encoded = {str(k): encode_value(v) for k, v in value.items()}
        if any(k.startswith("$") for k in encoded):
            return {"$esc": encoded}
        return encoded
    if isinstance(value, list | tuple | set | frozenset):
        return [encode_value(v) for v in value]
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, date):
        return {"$d": value.isoformat()}
    if isinstance(value, timedelta):
        return {"$td": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {"$dec": str(value)}
    if isinstance(value, UUID):
        return {"$uuid": str(value)}
    raise TypeError(f"a {type(value).__name__} cannot be stored in case data")


def decode_value(value: Any) -> Any:
    if isinstance(value, list):
        return [decode_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        if key == "$esc":
            return {k: decode_value(v) for k, v in inner.items()}
        if key == "$dt":
            return datetime.fromisoformat(inner)
        if key == "$d":
            return date.fromisoformat(inner)
        if key == "$td":
            return timedelta(days=inner[0], seconds=inner[1], microseconds=inner[2])
        if key == "$dec":
            return Decimal(inner)
        if key == "$uuid":
            return UUID(inner)
    return {k: decode_value(v) for k, v in value.items()}


def encode_data(data: dict[str, Any]) -> dict[str, Any]:
    return {str(k): encode_value(v) for k, v in data.items() if not callable(v)}


def decode_data(data: dict[str, Any]) -> dict[str, Any]:
    return {k: decode_value(v) for k, v in data.items()}


# --- specs -----------------------------------------------------------------------------------


def spec_to_json(spec: BpmnProcessSpec, subprocess_specs: dict[str, BpmnProcessSpec]) -> str:
    return json.dumps(
        {
            "spec": REGISTRY.convert(spec),
            "subprocess_specs": {k: REGISTRY.convert(v) for k, v in subprocess_specs.items()},
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def spec_from_json(text: str) -> tuple[BpmnProcessSpec, dict[str, BpmnProcessSpec]]:
    raw = json.loads(text)
    spec = REGISTRY.restore(raw["spec"])
    subprocess_specs = {k: REGISTRY.restore(v) for k, v in raw["subprocess_specs"].items()}
    return spec, subprocess_specs


# --- instance documents ----------------------------------------------------------------------


def _task_to_dict(task: Task) -> dict[str, Any]:
    parent = task.parent
    entry: dict[str, Any] = {
        "id": str(task.id),
        "parent": str(task._parent) if parent is not None else None,
        "children": [str(c) for c in task._children],
        "state": task._state,
        "spec": task.task_spec.name,
        "changed": task.last_state_change,
    }
    if task.triggered:
        entry["triggered"] = True
    if task.internal_data:
        entry["internal"] = REGISTRY.convert(task.internal_data)
    if parent is None:
        entry["data"] = encode_data(task.data)
    else:
        base = parent.data
        updates = {k: v for k, v in task.data.items() if k not in base or base[k] != v}
        deleted = [k for k in base if k not in task.data]
        if updates:
            entry["set"] = encode_data(updates)
        if deleted:
            entry["del"] = deleted
    return entry


def _workflow_to_dict(workflow: Any) -> dict[str, Any]:
    return {
        "root": str(workflow.task_tree.id),
        "last_task": str(workflow.last_task.id) if workflow.last_task is not None else None,
        "success": workflow.success,
        "completed": workflow.completed,
        "data": encode_data(workflow.data),
        "correlations": encode_value(workflow.correlations),
        "tasks": [_task_to_dict(t) for t in workflow.tasks.values()],
    }


def dump_workflow(workflow: BpmnWorkflow) -> str:
    """The instance document: task trees and data, without the spec."""
    document = _workflow_to_dict(workflow)
    document["format"] = DOCUMENT_FORMAT
    document["bpmn_events"] = REGISTRY.convert(workflow.bpmn_events)
    document["subprocesses"] = {
        str(task_id): {**_workflow_to_dict(sp), "spec": sp.spec.name}
        for task_id, sp in workflow.subprocesses.items()
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def _restore_tasks(workflow: Any, entries: list[dict[str, Any]]) -> None:
    workflow.tasks = {}
    top = workflow.top_workflow
    for entry in entries:
        task_spec = workflow.spec.task_specs.get(entry["spec"])
        if task_spec is None:
            raise ValueError(
                f"the instance refers to element {entry['spec']!r} missing from its spec"
            )
        task = Task(workflow, task_spec, state=entry["state"], id=UUID(entry["id"]))
        task._parent = UUID(entry["parent"]) if entry["parent"] is not None else None
        task._children = [UUID(c) for c in entry["children"]]
        task.last_state_change = entry["changed"]
        task.triggered = entry.get("triggered", False)
        task.internal_data = REGISTRY.restore(entry["internal"]) if "internal" in entry else {}
        parent = task.parent
        if parent is None:
            task.data = decode_data(entry.get("data", {}))
        else:
            data = dict(parent.data)
            data.update(decode_data(entry.get("set", {})))
            for key in entry.get("del", []):
                data.pop(key, None)
            task.data = data
        if isinstance(task_spec, CatchingEvent) and task.has_state(TaskState.WAITING):
            top.event_manager.add_task(task)


def _restore_attributes(workflow: Any, raw: dict[str, Any]) -> None:
    workflow.task_tree = workflow.tasks[UUID(raw["root"])]
    workflow.last_task = workflow.tasks.get(UUID(raw["last_task"])) if raw["last_task"] else None
    workflow.success = raw["success"]
    workflow.completed = raw["completed"]
    workflow.data = decode_data(raw["data"])
    workflow.correlations = decode_value(raw["correlations"])


def load_workflow(
    text: str,
    spec: BpmnProcessSpec,
    subprocess_specs: dict[str, BpmnProcessSpec],
    script_engine: Any,
) -> BpmnWorkflow:
    raw = json.loads(text)
    if raw.get("format") != DOCUMENT_FORMAT:
        raise ValueError(f"unknown instance document format {raw.get('format')!r}")
    workflow = BpmnWorkflow(spec, subprocess_specs, script_engine=script_engine, deserializing=True)
    _restore_tasks(workflow, raw["tasks"])
    _restore_attributes(workflow, raw)
    workflow.bpmn_events = REGISTRY.restore(raw.get("bpmn_events", []))
    pending = dict(raw.get("subprocesses", {}))
    _restore_subprocesses(workflow, workflow, pending)
    return workflow


def _restore_subprocesses(workflow: BpmnWorkflow, parent: Any, pending: dict[str, Any]) -> None:
    for task in list(parent.tasks.values()):
        if not isinstance(task.task_spec, SubWorkflowTask):
            continue
        raw = pending.pop(str(task.id), None)
        if raw is None:
            continue
        sp_spec = workflow.subprocess_specs[raw["spec"]]
        subprocess = BpmnSubWorkflow(sp_spec, task.id, workflow, deserializing=True)
        _restore_tasks(subprocess, raw["tasks"])
        _restore_attributes(subprocess, raw)
        workflow.subprocesses[task.id] = subprocess
        subprocess.completed_event.connect(task.task_spec._on_subworkflow_completed, task)
        _restore_subprocesses(workflow, subprocess, pending)
