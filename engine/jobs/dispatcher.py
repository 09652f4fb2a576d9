"""The dispatcher: leases due jobs and hands them to an executor, forever.

Safe to run in several processes at once (row locks with SKIP LOCKED on PostgreSQL, the write
lock on SQLite). A job whose executor cannot take it (broker down) is given back untouched; a
job whose worker died is leased again when its lease runs out.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING

from engine.jobs import store
from engine.jobs.executors import Executor
from engine.jobs.wakeup import Waiter
from engine.runtime import clock
from engine.runtime.job_results import ExhaustJob

if TYPE_CHECKING:
    from engine.app import Govflow

log = logging.getLogger("govflow.jobs")


class Dispatcher:
    def __init__(self, govflow: Govflow, executor: Executor, batch: int = 16) -> None:
        from engine.jobs.execution import WORKER

        self.govflow = govflow
        self.executor = executor
        self.batch = batch
        self.actor = WORKER
        self.name = f"dispatcher-{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiter: Waiter | None = None

    def tick(self) -> int:
        """One round: lease due jobs, hand them over; returns how many were handed over."""
        now = clock.now()
        leases, exhausted = store.claim_due(
            self.govflow.database, now, self.batch, self.govflow.settings.lease_grace_s
        )
        for job_id in exhausted:
            try:
                self.govflow.runner.execute(ExhaustJob(job_id), self.actor)
            except Exception:
                log.exception("could not close exhausted job %s", job_id)
        handed = 0
        for lease in leases:
            try:
                self.executor.submit(lease)
                handed += 1
            except Exception as exc:
                log.warning("executor refused job %s (%s); it stays queued", lease.job_id, exc)
                store.release(self.govflow.database, lease, clock.now())
        return handed

    def run(self, poll_s: float = 0.5) -> None:
        """Rounds until stopped; when idle, the next round comes as a command commits a new
        job (engine/jobs/wakeup.py), or after `poll_s` for jobs that came due meanwhile.

        After a round that handed jobs over, the next one runs at once, for jobs that came
        during it, unless the waiter hears every commit (PostgreSQL, listening): then only
        after a full batch, since a job committed during the round has woken the wait already.
        (Woken by every new job, the dispatcher ran an empty round after each one.) On SQLite
        the waiter hears only this process's commits (`govflow serve --workers N` and a
        `govflow dispatcher` of its own commit elsewhere). A job given back because the
        executor refused it is not handed over, so a broker that is down does not make the
        rounds run back to back."""
        waiter = self._waiter = Waiter(self.govflow.database, self._stop)
        try:
            try:
                waiter.listen()
            except Exception:  # the thread goes on, polling
                log.exception("listening for new jobs failed")
            while not self._stop.is_set():
                try:
                    handed = self.tick()
                    busy = handed >= self.batch or (handed > 0 and not waiter.hears_every_commit)
                except Exception:
                    log.exception("dispatcher round failed")
                    busy = False
                if busy or self._stop.is_set():
                    continue
                try:
                    waiter.wait(poll_s)
                except Exception:  # the thread goes on, polling
                    log.exception("waiting for new jobs failed")
                    self._stop.wait(poll_s)
        finally:
            waiter.close()

    def start(self, poll_s: float = 0.5) -> threading.Thread:
        self._thread = threading.Thread(
            target=self.run, args=(poll_s,), name=self.name, daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        self._stop.set()
        if self._waiter is not None:
            self._waiter.interrupt()
        if self._thread is not None:
            self._thread.join(timeout=10)
