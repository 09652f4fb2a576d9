"""A command's writes that nothing reads back, sent to PostgreSQL in one round trip.

On PostgreSQL each statement costs a network round trip, which on the 2-core reference machine
is more than the statement's own work (docs/performance.md). The writes of a command whose
results the command does not use (a task row's new state, the version fence, the projections,
the audit row) are queued instead and sent together in psycopg's pipeline mode, in one socket
write (engine/store/one_send.py): when any other statement is about to run on the connection
(a read, an ORM flush) and before the command commits. So a queued write always reaches the
server before every statement issued after it, in the order it was issued; only the waiting
is shared.

A queued write may carry a fence: it must change exactly one row, or the command gets a
`VersionConflict` at the next send (and is retried by the runner on fresh state), before any
later statement runs and before the commit. A queued write may instead have its fence checked
in the server (`failure`), which aborts the transaction by itself; a batch holding only such
fences can carry the command's COMMIT too (`send(session, commit=True)`). The queued
statements run on the driver directly, compiled once (engine/store/driver_sql.py).

On SQLite there is no network: a write runs at once (on the driver too) and its fence is
checked at once.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from engine.errors import OutcomeUnknown, VersionConflict
from engine.store import driver_sql, pipelined_begin
from engine.store.one_send import one_send


@dataclass
class _Write:
    statement: Executable
    params: Any
    fence: str | None = None  # the write must change one row (checked after the round trip)
    failure: tuple[str, str] | None = None  # (SQLSTATE, fence): the server checked the fence


@dataclass
class _Queue:
    """The writes queued on one connection, sent before anything else runs on it. It holds no
    reference to the connection: it is the value of a weak mapping keyed by the connection."""

    writes: list[_Write] = field(default_factory=list)
    sending: bool = False

    def send(self, connection: Connection, commit: bool = False) -> None:
        """Send the writes in one round trip; with `commit`, the COMMIT too, unless a write's
        fence is a row count, which can only be checked after the round trip."""
        if not self.writes or self.sending:
            return
        writes, self.writes = self.writes, []
        commit = commit and all(write.fence is None for write in writes)
        self.sending = True
        fenced: list[tuple[Any, str]] = []
        driver = connection.connection.driver_connection
        assert isinstance(driver, psycopg.Connection)
        failed: Exception | None = None
        try:
            try:
                begin = pipelined_begin.needs_begin(driver)
                with one_send(driver):
                    if begin:  # the transaction's first statements (pipelined_begin)
                        driver.execute(pipelined_begin.BEGIN)
                    for write in writes:
                        try:
                            cursor = driver_sql.execute(write.statement, write.params, connection)
                        except (psycopg.Error, DBAPIError) as exc:
                            # an earlier write's error, read while this one was sent (a
                            # psycopg without one_send's deferral): stop here, so the
                            # pipeline ends without an exception in flight
                            failed = exc
                            break
                        if write.fence is not None:
                            # the row count arrives with the sync at the end of the block
                            fenced.append((cursor, write.fence))
                    if commit and failed is None:
                        try:
                            driver.execute(COMMIT)
                        except psycopg.Error as exc:  # as above: an earlier write's error
                            failed = exc
            except psycopg.Error as exc:
                failed = failed or exc
            if failed is not None:
                reason = _reason(failed, writes, connection, retryable=not commit)
                if reason is failed:
                    raise failed
                raise reason from failed
        finally:
            self.sending = False
        for cursor, message in fenced:
            if cursor.rowcount != 1:
                raise VersionConflict(message)


COMMIT = "COMMIT"


def _reason(
    failed: Exception, writes: list[_Write], connection: Connection, *, retryable: bool
) -> Exception:
    """The error a failed batch raises: `VersionConflict` for a fence the server checked, the
    database's own error (wrapped as SQLAlchemy does) for anything else. A lost connection is
    marked invalidated, which lets the runner run the command again, only when the batch held
    no COMMIT. After one, whether it committed is unknown: `OutcomeUnknown`, which nobody
    retries, and the connection is invalidated here so that the rollback on the way out does
    nothing (on the dead connection it would raise a disconnect of its own, which the runner
    would take for a retryable one)."""
    orig = failed.orig if isinstance(failed, DBAPIError) else failed
    state = getattr(orig, "sqlstate", None)
    for write in writes:
        if write.failure is not None and state == write.failure[0]:
            return VersionConflict(write.failure[1])
    if isinstance(failed, DBAPIError):
        return failed
    lost = connection.dialect.is_disconnect(failed, connection.connection, None)
    if lost and not retryable:
        connection.invalidate(failed)
        return OutcomeUnknown(
            "the connection to the database was lost while this change was being committed: "
            "it may or may not have been saved; look before sending it again",
            {"database_error": str(failed).strip().splitlines()[0] if str(failed) else None},
        )
    return DBAPIError.instance(
        "(queued writes)", None, failed, psycopg.Error, connection_invalidated=lost
    )


_SESSION_KEY = "govflow_write_queue"
_queues: weakref.WeakKeyDictionary[Connection, _Queue] = weakref.WeakKeyDictionary()


def install(engine: Engine) -> None:
    """Make a PostgreSQL engine's connections send their queued writes before any other
    statement, drop them on rollback, and refuse a commit that would leave some unsent.
    (Listeners on the engine, once: listening per connection cost 0.1 ms per command.)"""
    event.listen(engine, "before_execute", _before_execute)
    event.listen(engine, "rollback", _rolled_back)
    event.listen(engine, "commit", _committing)


def _before_execute(connection: Connection, *_args: Any) -> None:
    queue = _queues.get(connection)
    if queue is not None:
        queue.send(connection)


def _rolled_back(connection: Connection) -> None:
    queue = _queues.get(connection)
    if queue is not None:
        queue.writes.clear()


def _committing(connection: Connection) -> None:
    queue = _queues.get(connection)
    if queue is not None and queue.writes and not queue.sending:
        raise RuntimeError(
            f"{len(queue.writes)} queued write(s) were not sent before the commit; "
            "call write_batch.send(session) first"
        )


def _enqueue(session: Session, connection: Connection, write: _Write) -> None:
    queue = _queues.get(connection)
    if queue is None:
        queue = _Queue()
        _queues[connection] = queue
    session.info[_SESSION_KEY] = queue
    queue.writes.append(write)


def write(
    session: Session,
    statement: Executable,
    params: Any = None,
    *,
    fence: str | None = None,
    failure: tuple[str, str] | None = None,
) -> None:
    """Run a write whose result the caller does not need: at once on SQLite, with the next
    statement or the commit on PostgreSQL. With `fence`, the write must change exactly one
    row, else `VersionConflict(fence)` is raised (at once, or when the queue is sent). With
    `failure` (PostgreSQL: SQLSTATE, fence), that error from the server means the statement's
    own fence failed, and the command gets `VersionConflict(fence)` when the queue is sent."""
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        assert failure is None, "a fence the server checks is PostgreSQL's"
        changed = driver_sql.rowcount(statement, params, connection)
        if fence is not None and changed != 1:
            raise VersionConflict(fence)
        return
    _enqueue(session, connection, _Write(statement, params, fence=fence, failure=failure))


def send(session: Session, *, commit: bool = False) -> None:
    """Send what is queued for the session now (a command does this before it commits). With
    `commit`, the COMMIT goes in the same round trip when no queued fence needs a row count
    checked first; the session's own commit then finds nothing left to do."""
    queue = session.info.get(_SESSION_KEY)
    if queue is not None and queue.writes:
        queue.send(session.connection(), commit)
