"""Job results applied to an instance, exactly once.

A result counts only if it carries the job's current lease token and the lease has not run
out; anything else (a repeat, a late answer from a worker presumed dead) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.jobs.handlers import policy_for
from engine.ops.metrics import observe_job
from engine.runtime.projections import jsonable
from engine.runtime.runner import CommandContext
from engine.store.models import Incident, Job

OUTCOMES = ("ok", "business_error", "error")


def _job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}")
    return job


def throw_business_error(task: Task, code: str, message: str, variables: dict[str, Any]) -> bool:
    """Deliver a BPMN error to the boundary events of `task`; True if one caught it."""
    parent = task.parent
    if parent is None or not isinstance(parent.task_spec, BoundaryEventSplit):
        return False
    payload = {"error_code": code, "error_message": message, **variables}
    event = BpmnEvent(ErrorEventDefinition(code, code=code), payload=payload)
    for boundary in parent.children:
        spec = boundary.task_spec
        if (
            boundary._state == TaskState.WAITING
            and isinstance(spec, BoundaryEvent)
            and isinstance(spec.event_definition, ErrorEventDefinition)
            and spec.catches(boundary, event)
        ):
            spec.catch(boundary, event)
            spec._update(boundary)
            return True
    return False


@dataclass
class ApplyJobResult:
    job_id: str
    token: str
    outcome: str
    output: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    message: str = ""
    name = "job_result"
    needs_workflow = True
    allowed_when_suspended = True
    allowed_when_ended = True

    def instance_id_for(self, session: Session) -> str:
        return _job(session, self.job_id).instance_id

    def apply(self, ctx: CommandContext) -> str:
        job = _job(ctx.session, self.job_id)
        if job.state != "running" or job.lease_owner != self.token:
            ctx.changed = False
            return "ignored: not the current lease"
        if job.lease_until is not None and job.lease_until < ctx.now:
            ctx.changed = False
            return "ignored: the lease ran out"
        job.updated_at = ctx.now
        job.lease_owner = None
        if ctx.instance.status in ("completed", "cancelled"):
            job.state = "cancelled"
            ctx.changed = False
            return "cancelled: the case has ended"
        try:
            task = ctx.workflow.get_task_from_id(UUID(job.task_id))
        except TaskNotFoundException:
            task = None
        if task is None or task._state != TaskState.STARTED:
            job.state = "cancelled"
            ctx.changed = False
            return "cancelled: the service task is no longer waiting"
        ctx.audit_task_id = job.task_id
        ctx.audit_element_id = job.element_id
        ctx.audit_data = {
            "job": job.id,
            "topic": job.topic,
            "attempt": job.attempts,
            "outcome": self.outcome,
            "output": jsonable(self.output),
            "error_code": self.error_code,
            "message": self.message or None,
        }
        if self.outcome == "ok":
            task.data.update(self.output)
            ctx.run_task_completion(task)
            job.state, job.result, job.completed_at = "completed", jsonable(self.output), ctx.now
            observe_job(job.topic, job.created_at, ctx.now)
            return "completed"
        if self.outcome == "business_error":
            job.state, job.error_code, job.error, job.completed_at = (
                "completed",
                self.error_code,
                self.message,
                ctx.now,
            )
            observe_job(job.topic, job.created_at, ctx.now)
            code = self.error_code or "error"
            if throw_business_error(task, code, self.message, self.output):
                return f"business error {code} taken by its boundary event"
            ctx.add_incident(
                "job",
                f"{job.topic} raised business error {code!r} ({self.message}) and no boundary "
                f"event of {job.element_id!r} catches it",
                job.task_id,
                job.element_id,
            )
            job.state = "failed"
            return "business error not caught"
        job.error = self.message
        policy = policy_for(job.topic)
        if job.attempts < job.max_attempts:
            job.state = "pending"
            job.next_run_at = ctx.now + timedelta(seconds=policy.backoff_for(job.attempts))
            ctx.changed = False
            return (
                f"retry {job.attempts + 1} of {job.max_attempts} at {job.next_run_at.isoformat()}"
            )
        job.state = "failed"
        ctx.add_incident(
            "job",
            f"{job.topic} failed {job.attempts} time(s); last error: {self.message}",
            job.task_id,
            job.element_id,
        )
        return "failed"


@dataclass
class ExhaustJob:
    """A job whose lease ran out on its last attempt: its worker died; raise an incident."""

    job_id: str
    name = "job_exhausted"
    needs_workflow = True
    allowed_when_suspended = True
    allowed_when_ended = True

    def instance_id_for(self, session: Session) -> str:
        return _job(session, self.job_id).instance_id

    def apply(self, ctx: CommandContext) -> None:
        job = _job(ctx.session, self.job_id)
        if job.state != "running" or job.lease_until is None or job.lease_until >= ctx.now:
            ctx.changed = False
            return
        job.state = "failed"
        job.lease_owner = None
        job.error = f"no result within the lease on attempt {job.attempts} (worker lost?)"
        job.updated_at = ctx.now
        if ctx.instance.status in ("completed", "cancelled"):
            ctx.changed = False
            return
        ctx.audit_element_id = job.element_id
        ctx.audit_data = {"job": job.id, "topic": job.topic}
        ctx.add_incident(
            "job",
            f"{job.topic} gave no result after {job.attempts} attempt(s); its worker may have died",
            job.task_id,
            job.element_id,
        )


def retry_failed_job(session: Session, incident: Incident, now: Any) -> bool:
    """Put the failed job an incident is about back in the queue with fresh attempts."""
    job = session.scalars(
        select(Job)
        .where(Job.task_id == incident.task_id, Job.state == "failed")
        .order_by(Job.updated_at.desc())
    ).first()
    if job is None:
        return False
    job.state = "pending"
    job.attempts = 0
    job.next_run_at = now
    job.lease_owner = None
    job.lease_until = None
    job.updated_at = now
    return True


@dataclass
class RaiseIncident:
    """Put an incident on an instance from outside a command on it (a message it threw could
    not be delivered)."""

    instance_id: str
    kind: str
    message: str
    element_id: str | None = None
    name = "incident"
    needs_workflow = True
    allowed_when_suspended = True
    allowed_when_ended = True

    def instance_id_for(self, session: Session) -> str:
        return self.instance_id

    def apply(self, ctx: CommandContext) -> None:
        ctx.run_steps = False
        ctx.audit_element_id = self.element_id
        ctx.add_incident(self.kind, self.message, None, self.element_id)
