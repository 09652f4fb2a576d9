"""SpiffWorkflow's script engine wired to govflow's sandbox and helper functions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.bpmn import juel
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


class GovflowScriptEngine(PythonScriptEngine):
    def __init__(self, sandbox: Sandbox) -> None:
        super().__init__(environment=SandboxEnvironment(sandbox))
        self.sandbox = sandbox


def make_script_engine(
    timeout_s: float, extra_helpers: Mapping[str, Any] | None = None
) -> GovflowScriptEngine:
    helpers = default_helpers()
    if extra_helpers:
        helpers.update(extra_helpers)
    return GovflowScriptEngine(Sandbox(timeout_s, helpers))
