"""Waking the dispatcher when a command commits a new job, instead of at its next poll.

An idle dispatcher looks for due jobs every half second, so a service task waited a quarter
of a second on average before its job was handed to a worker (bench.e2e: created to done
300-550 ms). Now a command that adds a job says so when it commits:

- on PostgreSQL with `NOTIFY govflow_jobs`, queued with the command's other writes (no round
  trip of its own) and delivered by the server at the commit, to a dispatcher in any
  process (`govflow serve --workers N` runs commands in child processes, the dispatcher in
  the parent; `govflow dispatcher` runs apart), which LISTENs on a connection of its own;
- on SQLite, where the dispatcher runs in the serving process, by setting an event after
  the session commits.

A rolled-back command wakes no one. The poll stays, for jobs due later (retries after a
back-off) and for a listening connection that was lost: it is opened again at the next wait.
"""

from __future__ import annotations

import logging
import threading
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
    if session.info.pop(_ADDED, False):
        _committed.set()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_ADDED, None)


class Waiter:
    """What an idle dispatcher waits on: a notification, or the poll's end."""

    def __init__(self, database: Database) -> None:
        url = database.engine.url
        self._conninfo = (
            url.set(drivername="postgresql").render_as_string(hide_password=False)
            if url.get_backend_name() == "postgresql"
            else None
        )
        self._listening: psycopg.Connection[Any] | None = None

    def wait(self, timeout: float) -> None:
        if self._conninfo is None:
            _committed.wait(timeout)
            _committed.clear()
            return
        try:
            connection = self._listen()
            for _ in connection.notifies(timeout=timeout, stop_after=1):
                pass
            # notifications of commits made meanwhile: the next round sees their jobs
            for _ in connection.notifies(timeout=0):
                pass
        except psycopg.Error as exc:
            log.warning("lost the job notifications (%s); polling until they are back", exc)
            self.close()
            threading.Event().wait(timeout)

    def interrupt(self) -> None:
        """End a wait at once (a dispatcher being stopped): every waiter in reach wakes for
        a round that finds nothing, which is harmless."""
        if self._conninfo is None:
            _committed.set()
            return
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as connection:
                connection.execute(f"NOTIFY {CHANNEL}")
        except psycopg.Error:
            pass  # the wait ends at its timeout

    def _listen(self) -> psycopg.Connection[Any]:
        if self._listening is None or self._listening.closed:
            assert self._conninfo is not None
            self._listening = psycopg.connect(self._conninfo, autocommit=True)
            self._listening.execute(f"LISTEN {CHANNEL}")
        return self._listening

    def close(self) -> None:
        if self._listening is not None:
            self._listening.close()
            self._listening = None
