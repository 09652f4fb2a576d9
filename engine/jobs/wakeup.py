"""Waking the dispatcher when a command commits a new job, instead of at its next poll.

An idle dispatcher looks for due jobs every half second, so a service task waited a quarter
of a second on average before its job was handed to a worker (bench.e2e, created to done:
a median of 271-293 ms, against 39-43 ms woken; docs/performance.md, "Late Sunday night").
Now a command that adds a job says so when it commits:

- on PostgreSQL with `NOTIFY govflow_jobs`, queued with the command's other writes (no round
  trip of its own) and delivered by the server at the commit, to a dispatcher in any
  process (`govflow serve --workers N` runs commands in child processes, the dispatcher in
  the parent; `govflow dispatcher` runs apart), which LISTENs on a connection of its own;
- on SQLite, where the dispatcher runs in the serving process, by setting an event after
  the session commits.

A rolled-back command wakes no one. The poll stays, for jobs due later (retries after a
back-off) and while a lost listening connection is opened again, within a second.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from engine.store import write_batch

if TYPE_CHECKING:
    from engine.store.db import Database

log = logging.getLogger("govflow.jobs")

CHANNEL = "govflow_jobs"
_NOTIFY = text(f"NOTIFY {CHANNEL}")
_ADDED = "govflow.new_job"

_committed = threading.Event()
"""Set when a session of this process committed a new job (SQLite's way)."""


def job_added(session: Session) -> None:
    """Called by whatever adds a job row in the session's transaction."""
    if session.get_bind().dialect.name == "postgresql" and not session.info.get(_ADDED):
        write_batch.write(session, _NOTIFY)  # once per transaction, sent with the commit
    session.info[_ADDED] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    # a savepoint's release fires this too: only the transaction's own commit counts
    if not session.in_nested_transaction() and session.info.pop(_ADDED, False):
        _committed.set()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    if not session.in_nested_transaction():
        session.info.pop(_ADDED, None)


# A listening connection gives up on a server it cannot reach, and notices one gone quiet
# (a failover, a dropped network) within about a minute, instead of waiting on it forever;
# the database URL's own settings of these win.
_CONNECTION_DEFAULTS = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class Waiter:
    """What an idle dispatcher waits on: a notification, the poll's end, or `stopping`."""

    def __init__(self, database: Database, stopping: threading.Event) -> None:
        engine = database.engine
        self._stopping = stopping
        self._connect_args: dict[str, Any] | None = None
        if engine.dialect.name == "postgresql":
            # the engine's own arguments: passwords, hosts and options as it connects with
            _, kwargs = engine.dialect.create_connect_args(engine.url)
            kwargs.pop("context", None)
            self._connect_args = {**_CONNECTION_DEFAULTS, **kwargs, "autocommit": True}
        self._listening: psycopg.Connection[Any] | None = None
        self._lost = False  # said once when the notifications are lost, once when back

    def listen(self) -> bool:
        """Start listening (PostgreSQL), before the dispatcher's first round reads the jobs:
        a job committed between that read and a later LISTEN would wait for the poll.
        Whether a new listening connection was opened."""
        if self._connect_args is None or self._listening is not None:
            return False
        try:
            self._listening = psycopg.connect(**self._connect_args)
            self._listening.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error as exc:
            self.close()
            if not self._lost:
                log.warning("cannot listen for new jobs (%s); polling until it can", exc)
            self._lost = True
            return False
        if self._lost:
            log.warning("listening for new jobs again")
        self._lost = False
        return True

    @property
    def hears_every_commit(self) -> bool:
        """Whether a job committed by any process wakes the wait now: on PostgreSQL while
        listening. On SQLite only this process's commits set the event."""
        return self._listening is not None

    def wait(self, timeout: float) -> None:
        """Until a job is committed, `timeout` passes or the dispatcher stops, in slices of
        at most a second, so a stop ends it within one."""
        deadline = time.monotonic() + timeout
        while not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0 or self._woken(min(left, 1.0)):
                return

    def _woken(self, timeout: float) -> bool:
        if self._connect_args is None:
            if not _committed.wait(timeout):
                return False
            _committed.clear()  # only once set: a commit after a timed-out slice stays seen
            return True
        if self._listening is None:
            # not listening (lost, or never could): a poll's slice, then one try; once
            # listening again, a round, for jobs committed while nobody listened
            self._stopping.wait(timeout)
            return not self._stopping.is_set() and self.listen()
        try:
            woken = any(True for _ in self._listening.notifies(timeout=timeout, stop_after=1))
            # notifications of commits made meanwhile: the next round sees their jobs
            for _ in self._listening.notifies(timeout=0):
                pass
            return woken
        except psycopg.Error as exc:
            log.warning("lost the job notifications (%s); polling until they are back", exc)
            self._lost = True
            self.close()
            return False

    def interrupt(self) -> None:
        """End a wait at once (the dispatcher is stopping; `stopping` is set). On SQLite
        the event does it; on PostgreSQL the wait's slice ends within a second anyway."""
        if self._connect_args is None:
            _committed.set()

    def close(self) -> None:
        if self._listening is not None:
            self._listening.close()
            self._listening = None
