"""Running one leased job: call its handler, report the outcome through the runner."""

from __future__ import annotations

import logging
import traceback
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select

from engine.accounts.actor import Actor
from engine.errors import GovflowError
from engine.jobs.handlers import BusinessError, JobContext, lookup
from engine.jobs.outbox import MESSAGE_TOPIC
from engine.runtime import clock
from engine.runtime.job_results import ApplyJobResult, RaiseIncident
from engine.runtime.sandbox import storable_problem
from engine.store import driver_sql
from engine.store.models import Instance, Job

if TYPE_CHECKING:
    from engine.app import Govflow

log = logging.getLogger("govflow.jobs")

WORKER = Actor("worker", frozenset({"ops"}))


# What running a job needs to know, in one read: the lease, the topic and payload, and the
# case's business key for the handler. A read-only transaction: the start time goes with the
# result (ApplyJobResult.started_at) instead of a write and a commit of its own.
_LEASED_JOB = (
    select(
        Job.state,
        Job.lease_owner,
        Job.instance_id,
        Job.topic,
        Job.attempts,
        Job.payload,
        Instance.business_key,
    )
    .select_from(Job)
    .outerjoin(Instance, Instance.id == Job.instance_id)
    .where(Job.id == bindparam("job_id"))
)


def run_job(govflow: Govflow, job_id: str, token: str) -> str:
    """Execute the job if `token` still holds its lease; returns what became of the result."""
    with govflow.database.read_session() as session:
        found = driver_sql.first(_LEASED_JOB, {"job_id": job_id}, session.connection())
    if found is None:
        return "stale lease: not run"
    state, lease_owner, instance_id, topic, attempts, payload, business_key = found
    if state != "running" or lease_owner != token:
        return "stale lease: not run"
    started_at = clock.now()
    context = JobContext(
        job_id=job_id,
        instance_id=instance_id,
        business_key=business_key,
        topic=topic,
        attempt=attempts,
        database=govflow.database,
    )
    variables = dict(payload or {})
    if context.topic == MESSAGE_TOPIC:
        return _deliver_message(govflow, job_id, token, variables, started_at)
    spec = lookup(context.topic)
    if spec is None:
        command = ApplyJobResult(
            job_id, token, "error", message=f"no handler for topic {context.topic!r}"
        )
    else:
        command = _call(spec.func, context, variables, job_id, token)
    command.started_at = started_at
    return str(govflow.runner.execute(command, Actor(f"worker:{context.topic}", WORKER.roles)))


def _call(
    func: object, context: JobContext, variables: dict, job_id: str, token: str
) -> ApplyJobResult:
    try:
        output = func(context, variables) or {}  # type: ignore[operator]
        if not isinstance(output, dict):
            raise TypeError(
                f"the handler returned a {type(output).__name__}, not a dict of variables"
            )
        for key, value in output.items():
            problem = storable_problem(value, key)
            if problem:
                raise TypeError(problem)
        return ApplyJobResult(job_id, token, "ok", output=output)
    except BusinessError as exc:
        return ApplyJobResult(
            job_id,
            token,
            "business_error",
            output=exc.variables,
            error_code=exc.code,
            message=exc.message,
        )
    except Exception as exc:
        log.warning("job %s (%s) failed: %s", job_id, context.topic, exc)
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" at {where.filename.rsplit('/', 1)[-1]}:{where.lineno}" if where else ""
        return ApplyJobResult(job_id, token, "error", message=f"{type(exc).__name__}: {exc}{at}")


def _deliver_message(
    govflow: Govflow, job_id: str, token: str, job_payload: dict, started_at: datetime
) -> str:
    """Hand a thrown message to the case waiting for it, or start the case it starts."""
    from engine.runtime import messages

    name = str(job_payload.get("name", ""))
    body = job_payload.get("payload") or {}
    try:
        delivery = messages.deliver(govflow.runner, WORKER, name, body, body.get("correlation_key"))
        outcome: dict | None = {"instance_id": delivery.instance_id, "started": delivery.started}
        error = ""
    except GovflowError as exc:
        outcome, error = None, exc.message
    with govflow.database.write_session() as session:
        job = session.get(Job, job_id)
        now = clock.now()
        if job is None or job.state != "running" or job.lease_owner != token:
            return "ignored: not the current lease"
        job.lease_owner, job.updated_at, job.started_at = None, now, started_at
        if outcome is not None:
            job.state, job.result, job.completed_at = "completed", outcome, now
            return f"delivered to {outcome['instance_id']}"
        job.error = error
        if job.attempts < job.max_attempts:
            job.state = "pending"
            job.next_run_at = now + timedelta(seconds=2.0 * 2 ** max(0, job.attempts - 1))
            return f"retry: {error}"
        job.state = "failed"
        instance_id = job.instance_id
    govflow.runner.execute(
        RaiseIncident(
            instance_id, "message", f"message {name!r} could not be delivered: {error}", name
        ),
        WORKER,
    )
    return "failed"
