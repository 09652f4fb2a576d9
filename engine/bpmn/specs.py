"""Task spec classes govflow's parser produces where SpiffWorkflow's defaults do not fit.

- User tasks carry their assignment (candidate groups and users, assignee, form key, due and
  follow-up dates, priority) so the worklist can be derived from the spec alone.
- Abstract tasks (`bpmn:task`) and manual tasks pass straight through, as in Camunda and
  Flowable: the work they stand for happens outside the engine.
"""

from __future__ import annotations

from typing import Any

from SpiffWorkflow.bpmn.specs.defaults import ManualTask, NoneTask, ServiceTask, UserTask

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
    """

    def __init__(self, wf_spec: Any, bpmn_id: str, topic: str | None = None, **kwargs: Any) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.topic = topic

    def _run_hook(self, my_task: Any) -> None:
        return None
