"""The job outbox: one live job row per parked external service task, written by the runner
in the same transaction as the instance document."""

from __future__ import annotations

import uuid
from typing import Any

from SpiffWorkflow.bpmn.workflow import BpmnWorkflow
from SpiffWorkflow.util.task import TaskState
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.bpmn.specs import GovflowServiceTask
from engine.jobs.handlers import policy_for
from engine.runtime.projections import all_tasks, element_id, jsonable
from engine.store.models import Instance, Job


def sync_jobs(session: Session, instance: Instance, workflow: BpmnWorkflow, now: Any) -> None:
    """One live job per parked external service task; jobs of tasks that went away cancel."""
    parked = {
        str(task.id): task
        for task in all_tasks(workflow)
        if task._state == TaskState.STARTED
        and isinstance(task.task_spec, GovflowServiceTask)
        and task.task_spec.topic
    }
    jobs = list(session.scalars(select(Job).where(Job.instance_id == instance.id)))
    live = {job.task_id for job in jobs if job.state in ("pending", "running", "failed")}
    for job in jobs:
        if job.state in ("pending", "running") and job.task_id not in parked:
            job.state = "cancelled"
            job.lease_owner = None
            job.updated_at = now
    for task_id, task in parked.items():
        if task_id in live:
            continue
        topic = task.task_spec.topic
        session.add(
            Job(
                id=str(uuid.uuid4()),
                instance_id=instance.id,
                task_id=task_id,
                element_id=element_id(task) or task.task_spec.name,
                topic=topic,
                state="pending",
                payload=jsonable(task.data),
                attempts=0,
                max_attempts=policy_for(topic).max_attempts,
                next_run_at=now,
                created_at=now,
                updated_at=now,
            )
        )
