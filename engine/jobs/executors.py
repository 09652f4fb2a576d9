"""Where leased jobs run: threads in this process (embedded default), or Celery workers."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from engine.jobs.execution import run_job
from engine.jobs.handlers import policy_for, queue_for
from engine.jobs.store import Lease

if TYPE_CHECKING:
    from engine.app import Govflow

log = logging.getLogger("govflow.jobs")

CELERY_TASK = "govflow.run_job"


class Executor(Protocol):
    def submit(self, lease: Lease) -> None:
        """Take the job or raise; a raise gives the lease back for later."""

    def shutdown(self) -> None: ...


class InProcessExecutor:
    def __init__(self, govflow: Govflow, threads: int = 4) -> None:
        self.govflow = govflow
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="govflow-job")

    def submit(self, lease: Lease) -> None:
        self.pool.submit(self._run, lease)

    def _run(self, lease: Lease) -> None:
        try:
            run_job(self.govflow, lease.job_id, lease.token)
        except Exception:  # the lease runs out and the dispatcher tries again
            log.exception("job %s could not report its result", lease.job_id)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)


class CeleryExecutor:
    """Sends `govflow.run_job(job_id, token)` to the queue of the topic's family."""

    def __init__(self, broker_url: str) -> None:
        from celery import Celery

        self.app = Celery("govflow-dispatcher", broker=broker_url)
        self.app.conf.update(
            task_serializer="json",
            accept_content=["json"],
            broker_connection_timeout=3,
            broker_connection_retry=False,
            broker_connection_max_retries=0,
            # one try to connect: a refused job goes back to the queue for the next round,
            # instead of kombu retrying for the connect timeout (6 s a job, the dispatcher
            # blocked, while the broker is down)
            broker_transport_options={"max_retries": 0},
        )

    def submit(self, lease: Lease) -> None:
        policy = policy_for(lease.topic)
        self.app.send_task(
            CELERY_TASK,
            args=[lease.job_id, lease.token],
            queue=queue_for(lease.topic),
            soft_time_limit=policy.timeout_s,
            time_limit=policy.timeout_s + 5,
            retry=False,
        )

    def shutdown(self) -> None:
        self.app.close()


def make_executor(govflow: Govflow) -> Executor:
    broker = govflow.settings.broker_url
    if broker:
        return CeleryExecutor(broker)
    return InProcessExecutor(govflow, govflow.settings.job_threads)
