"""Running one leased job: call its handler, report the outcome through the runner."""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING

from engine.accounts.actor import Actor
from engine.jobs.handlers import BusinessError, JobContext, lookup
from engine.runtime import clock
from engine.runtime.job_results import ApplyJobResult
from engine.runtime.sandbox import storable_problem
from engine.store.models import Instance, Job

if TYPE_CHECKING:
    from engine.app import Govflow

log = logging.getLogger("govflow.jobs")

WORKER = Actor("worker", frozenset({"ops"}))


def run_job(govflow: Govflow, job_id: str, token: str) -> str:
    """Execute the job if `token` still holds its lease; returns what became of the result."""
    with govflow.database.session() as session:
        job = session.get(Job, job_id)
        if job is None or job.state != "running" or job.lease_owner != token:
            return "stale lease: not run"
        instance = session.get(Instance, job.instance_id)
        job.started_at = clock.now()
        context = JobContext(
            job_id=job.id,
            instance_id=job.instance_id,
            business_key=instance.business_key if instance else None,
            topic=job.topic,
            attempt=job.attempts,
            database=govflow.database,
        )
        variables = dict(job.payload or {})
    spec = lookup(context.topic)
    if spec is None:
        command = ApplyJobResult(
            job_id, token, "error", message=f"no handler for topic {context.topic!r}"
        )
    else:
        command = _call(spec.func, context, variables, job_id, token)
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
