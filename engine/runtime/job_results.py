"""Job results applied to an instance, exactly once.

A result counts only if it carries the job's current lease token and the lease has not run
out; anything else (a repeat, a late answer from a worker presumed dead) is ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn.specs.control import BoundaryEventSplit
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import ErrorEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.intermediate_event import BoundaryEvent
from SpiffWorkflow.bpmn.util import BpmnEvent
from SpiffWorkflow.exceptions import TaskNotFoundException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from engine.errors import NotFound
from engine.jobs.handlers import policy_for
from engine.ops.metrics import observe_job
from engine.runtime import projections
from engine.runtime.projections import jsonable
from engine.runtime.runner import CommandContext
from engine.store import driver_sql, orm_rows
from engine.store.models import Incident, Instance, Job

OUTCOMES = ("ok", "business_error", "error")

_INSTANCES = Instance.__table__
_JOBS = Job.__table__
# A job result's case and job rows, and the ids of the case's open task rows, in one statement
# on the driver, made into the ORM objects the runner and `apply` work on: routing by the job,
# reading the case, the job again (the identity map had let the first Job go) and the task
# rows were four ORM queries per result.
_CASE_WITH_JOB = (
    select(
        *orm_rows.columns(Instance),
        *orm_rows.columns(Job),
        projections.open_task_ids_of(_INSTANCES),
    )
    .select_from(_INSTANCES.join(_JOBS, _JOBS.c.instance_id == _INSTANCES.c.id))
    .where(_JOBS.c.id == bindparam("job_id"))
)
_INSTANCE_END = len(orm_rows.columns(Instance))
_JOB_END = _INSTANCE_END + len(orm_rows.columns(Job))
_READ_JOB = "govflow_read_job"


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
    # when the worker began the job: written with the result, so running a job costs no
    # write of its own (a worker that dies mid-job leaves it unset; the lease tells ops)
    started_at: datetime | None = None
    name = "job_result"
    needs_workflow = True
    allowed_when_suspended = True
    allowed_when_ended = True

    def instance_id_for(self, session: Session) -> str:
        return _job(session, self.job_id).instance_id

    def read_instance(self, session: Session) -> Instance:
        found = driver_sql.first(_CASE_WITH_JOB, {"job_id": self.job_id}, session.connection())
        if found is None:
            raise NotFound(f"no job {self.job_id}")
        # held in session.info: the identity map keeps an unchanged object only while
        # something else refers to it, and `apply` finds the job there with session.get
        session.info[_READ_JOB] = orm_rows.persistent(session, Job, found[_INSTANCE_END:_JOB_END])
        session.info[projections.CASE_TASKS] = projections.CaseTasks.from_column(found[_JOB_END])
        return orm_rows.persistent(session, Instance, found[:_INSTANCE_END])

    def apply(self, ctx: CommandContext) -> str:
        job = _job(ctx.session, self.job_id)
        if job.state != "running" or job.lease_owner != self.token:
            ctx.changed = False
            return "ignored: not the current lease"
        if job.lease_until is not None and job.lease_until < ctx.now:
            ctx.changed = False
            return "ignored: the lease ran out"
        if self.started_at is not None:
            job.started_at = self.started_at
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
