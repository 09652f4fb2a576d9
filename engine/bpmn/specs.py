"""Task spec classes govflow's parser produces where SpiffWorkflow's defaults do not fit.

- User tasks carry their assignment (candidate groups and users, assignee, form key, due and
  follow-up dates, priority) so the worklist can be derived from the spec alone.
- Abstract tasks (`bpmn:task`) and manual tasks pass straight through, as in Camunda and
  Flowable: the work they stand for happens outside the engine.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import ManualTask, NoneTask, ServiceTask, UserTask

SERVICE_EXPRESSION = "govflow:expression"
SERVICE_RESULT = "govflow:resultVariable"

ASSIGNMENT_KEYS = (
    "candidate_groups",
    "candidate_users",
    "assignee",
    "form_key",
    "due_date",
    "follow_up_date",
    "priority",
)


class GovflowUserTask(UserTask):
    """A user task with its Camunda-style assignment attributes (raw, evaluated when ready)."""

    def __init__(
        self, wf_spec: Any, bpmn_id: str, assignment: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.assignment: dict[str, Any] = dict(assignment or {})


class PassThroughTask(NoneTask):
    """`bpmn:task`: completes as soon as it is reached."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class PassThroughManualTask(ManualTask):
    """`bpmn:manualTask`: work done by hand outside the engine; the token moves on."""

    def __init__(self, wf_spec: Any, bpmn_id: str, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.manual = False


class GovflowServiceTask(ServiceTask):
    """A service task done by a worker: it parks (STARTED) and the runner writes a job row.

    `topic` names the handler (Camunda's `camunda:type="external" camunda:topic="..."`).
    A service task with `camunda:expression` instead runs the expression (kept in the spec's
    extensions) and completes at once, its result in `camunda:resultVariable` if named.
    """

    def __init__(self, wf_spec: Any, bpmn_id: str, topic: str | None = None, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.topic = topic

    def _run_hook(self, my_task: Any) -> bool | None:
        extensions = getattr(self, "extensions", None) or {}
        expression = extensions.get(SERVICE_EXPRESSION)
        if expression is None:
            return None  # parks; the runner writes a job row
        value = my_task.workflow.script_engine.evaluate(my_task, expression)
        if extensions.get(SERVICE_RESULT):
            my_task.data[extensions[SERVICE_RESULT]] = value
        return True
