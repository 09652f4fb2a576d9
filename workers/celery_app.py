"""The Celery application that `govflow worker` runs.

Its one task runs a leased job by id; everything the job needs is in the database, so a
message carries nothing but the job id and the lease token. Messages are acknowledged on
receipt: a worker that dies mid-job leaves the job to the dispatcher, which leases it again
when the lease runs out, and a late result from the dead lease is ignored.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from celery import Celery

from engine.app import Govflow
from engine.jobs.execution import run_job
from engine.jobs.executors import CELERY_TASK

app = Celery("govflow")
app.conf.update(
    broker_url=os.environ.get("GOVFLOW_BROKER_URL", "redis://127.0.0.1:6379/0"),
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=False,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_lock = threading.Lock()
_govflow: Govflow | None = None


def govflow() -> Govflow:
    global _govflow
    with _lock:
        if _govflow is None:
            _govflow = Govflow()
        return _govflow


@app.task(name=CELERY_TASK)
def run_job_task(job_id: str, token: str) -> Any:
    return run_job(govflow(), job_id, token)
