"""On PostgreSQL, a transaction's BEGIN goes to the server together with its first statement.

psycopg opens a transaction by sending BEGIN on its own and waiting for the answer before it
sends the first statement: a round trip in every transaction, a third of a task command's
(docs/performance.md). So the engine runs the driver in autocommit mode (SQLAlchemy's
AUTOCOMMIT isolation level, which then sends no BEGIN) and this module sends BEGIN in one
pipeline with the first statement of each transaction, in one socket write (one_send.py). The
statements that follow run in that transaction; COMMIT and ROLLBACK are sent by psycopg as
before, which sends them whenever the server is in a transaction. A connection explicitly
given `isolation_level="AUTOCOMMIT"` (VACUUM, CREATE INDEX CONCURRENTLY) runs without a
transaction, as asked.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import event
from sqlalchemy.engine import Engine

from engine.store.one_send import one_send

BEGIN = "BEGIN"


def install(engine: Engine) -> None:
    event.listen(engine, "do_execute", _execute)
    event.listen(engine, "do_execute_no_params", _execute_no_params)
    event.listen(engine, "do_executemany", _executemany)


def needs_begin(driver: psycopg.Connection[Any]) -> bool:
    """Whether the connection is outside a transaction (and not queueing a pipeline)."""
    pgconn = driver.pgconn
    return (
        pgconn.transaction_status == pq.TransactionStatus.IDLE
        and pgconn.pipeline_status == pq.PipelineStatus.OFF
    )


def _wants_transaction(cursor: Any, context: Any) -> bool:
    if context is not None and context.execution_options.get("isolation_level") == "AUTOCOMMIT":
        return False
    return needs_begin(cursor.connection)


def _execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    if not _wants_transaction(cursor, context):
        return False
    if isinstance(cursor, psycopg.ServerCursor):  # pipeline mode has no server-side cursors
        cursor.connection.execute(BEGIN)
        return False
    with one_send(cursor.connection):
        cursor.connection.execute(BEGIN)
        cursor.execute(statement, parameters)
    return True  # the statement ran; its rows are on the cursor


def _execute_no_params(cursor: Any, statement: str, context: Any) -> bool:
    # SQL without parameters may hold several statements, which only the simple query
    # protocol runs, never a pipeline: BEGIN goes first on its own
    if _wants_transaction(cursor, context):
        cursor.connection.execute(BEGIN)
    return False


def _executemany(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    if _wants_transaction(cursor, context):
        cursor.connection.execute(BEGIN)  # rare: a transaction that starts with a bulk write
    return False
