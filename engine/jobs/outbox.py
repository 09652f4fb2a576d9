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
from engine.jobs.wakeup import job_added
from engine.runtime.projections import all_tasks, element_id, jsonable
from engine.store.models import Instance, Job

MESSAGE_TOPIC = "bpmn.message"
"""Jobs that carry a message thrown by a case to the case (or new case) that catches it."""


def sync_jobs(
    session: Session,
    instance: Instance,
    workflow: BpmnWorkflow,
    now: Any,
    *,
    parked_at_load: bool = True,
) -> None:
    """One live job per parked external service task; jobs of tasks that went away cancel.

    `parked_at_load=False` says no task was parked (started) when the command loaded the
    case: then it has no live job, and its jobs are not read (a query per command saved)."""
    parked = {
        str(task.id): task
        for task in all_tasks(workflow)
        if task._state == TaskState.STARTED
        and isinstance(task.task_spec, GovflowServiceTask)
        and task.task_spec.topic
    }
    if not parked_at_load and not parked:
        return
    jobs = (
        list(session.scalars(select(Job).where(Job.instance_id == instance.id)))
        if parked_at_load
        else []
    )
    live = {job.task_id for job in jobs if job.state in ("pending", "running", "failed")}
    for job in jobs:
        if job.topic == MESSAGE_TOPIC:
            continue
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
        job_added(session)


def queue_messages(session: Session, instance: Instance, events: list[Any], now: Any) -> None:
    """Messages a case threw that nothing inside it caught leave as jobs, in the same
    transaction, so they reach their catcher even if this process stops right after."""
    for event in events:
        payload = event.payload if isinstance(event.payload, dict) else {"value": event.payload}
        session.add(
            Job(
                id=str(uuid.uuid4()),
                instance_id=instance.id,
                task_id="",
                element_id=event.event_definition.name,
                topic=MESSAGE_TOPIC,
                state="pending",
                payload={"name": event.event_definition.name, "payload": jsonable(payload)},
                attempts=0,
                max_attempts=5,
                next_run_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        job_added(session)
