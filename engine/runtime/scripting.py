"""SpiffWorkflow's script engine wired to govflow's sandbox and helper functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment
from SpiffWorkflow.bpmn.specs.mixins.multiinstance_task import MultiInstanceTask
from SpiffWorkflow.util.task import TaskState

from engine.bpmn import juel, timers
from engine.runtime import clock
from engine.runtime.sandbox import Sandbox


def default_helpers() -> dict[str, Any]:
    """Functions and types every script and expression may use."""
    return {
        "now": clock.now,
        "today": lambda: clock.now().date(),
        "datetime": datetime,
        "date": date,
        "timedelta": timedelta,
        "juel_empty": juel.empty,
        "cron_cycle": lambda text: timers.cron_cycle(text, clock.now()),
    }


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """Spiff's script environment, backed by the restricted sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__({})
        self.sandbox = sandbox

    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> Any:
        scope = dict(context)
        if external_context:
            scope.update(external_context)
        return self.sandbox.evaluate(juel.to_python(expression), scope)

    def execute(
        self,
        script: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        if external_context:
            merged = {**context, **external_context}
            self.sandbox.execute(script, merged)
            for key in external_context:
                if merged.get(key) is external_context[key]:
                    merged.pop(key, None)
            context.clear()
            context.update(merged)
        else:
            self.sandbox.execute(script, context)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise NotImplementedError("service tasks run as jobs, not inside the script engine")


def loop_variables(task: Any) -> dict[str, Any]:
    """Camunda's multi-instance variables for an instance of a multi-instance activity, or
    for the activity itself: `loopCounter`, `nrOfInstances`, `nrOfActiveInstances`,
    `nrOfCompletedInstances` (what completion conditions such as
    `${nrOfCompletedInstances/nrOfInstances >= 0.5}` read)."""
    spec = getattr(task, "task_spec", None)
    parent = getattr(task, "parent", None)
    if isinstance(spec, MultiInstanceTask):
        activity, instance = task, None
    elif (
        parent is not None
        and isinstance(parent.task_spec, MultiInstanceTask)
        and spec is not None
        and spec.name == parent.task_spec.task_spec
    ):
        activity, instance = parent, task
    else:
        return {}
    mi_spec = activity.task_spec
    instances = [c for c in activity.children if c.task_spec.name == mi_spec.task_spec]
    completed = len(activity.internal_data.get("merged", []))
    active = sum(1 for c in instances if not c.has_state(TaskState.FINISHED_MASK))
    total = len(instances)
    if "cardinality" in activity.internal_data:
        total = max(total, int(activity.internal_data["cardinality"] or 0))
    elif "remaining" in activity.internal_data:
        total += len(activity.internal_data["remaining"])
    variables: dict[str, Any] = {
        "nrOfInstances": total,
        "nrOfActiveInstances": active,
        "nrOfCompletedInstances": completed,
    }
    if instance is not None:
        counter = instance.internal_data.get("loopCounter")
        variables["loopCounter"] = instances.index(instance) if counter is None else counter
    return variables


class GovflowScriptEngine(PythonScriptEngine):
    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(environment=SandboxEnvironment(sandbox))
        self.sandbox = sandbox

    def evaluate(
        self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None
    ) -> Any:
        loop = loop_variables(task)
        if loop:
            external_context = {**loop, **(external_context or {})}
        return super().evaluate(task, expression, external_context)


def make_script_engine(
    timeout_s: float, extra_helpers: Mapping[str, Any] | None = None
) -> GovflowScriptEngine:
    helpers = default_helpers()
    if extra_helpers:
        helpers.update(extra_helpers)
    return GovflowScriptEngine(Sandbox(timeout_s, helpers))
