"""On PostgreSQL, a transaction that wrote nothing ends with COMMIT even when it is rolled back.

psycopg forgets every statement it has prepared on a connection whenever it rolls a
transaction back (DEALLOCATE ALL: a rolled-back transaction may have dropped what they refer
to). Commands are refused or retried by raising, which rolls their transaction back: a clerk's
form with a wrong field, a claim that lost a race, and above all claim-next finding every task
at the head of the queue held by colleagues. Each such refusal cost the connection all its
prepared statements; the next commands on it parsed and planned every statement again until
each had run five times more (bench.e2e: a third of claim-next picks met held tasks, and most
statements ran unprepared, docs/performance.md "Saturday afternoon").

A transaction with no transaction id has written nothing and holds no row locks
(`txid_current_if_assigned()` is NULL; PostgreSQL 10 and later), so its COMMIT and its
ROLLBACK are the same to the database; ending it with COMMIT keeps the prepared statements.
Writes the engine had only queued (engine/store/write_batch.py) were never sent, and stay
unsent. Anything else (a transaction that wrote, locked a row, or failed on the server) is
rolled back as before.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

WROTE_NOTHING = "SELECT txid_current_if_assigned() IS NULL"


def install(engine: Engine) -> None:
    event.listen(engine, "rollback", _end_read_only)


def _end_read_only(connection: Connection) -> None:
    """Before SQLAlchemy's rollback: commit the transaction if it wrote nothing (the
    rollback then finds no transaction and leaves the prepared statements alone)."""
    if connection.invalidated:
        return  # lost: the pool discards it
    driver: psycopg.Connection[Any] = connection.connection.driver_connection  # type: ignore[assignment]
    pgconn = driver.pgconn
    if (
        pgconn.status != pq.ConnStatus.OK
        or pgconn.transaction_status != pq.TransactionStatus.INTRANS
        or pgconn.pipeline_status != pq.PipelineStatus.OFF
    ):
        return
    try:
        with driver.cursor() as cursor:
            wrote_nothing = cursor.execute(WROTE_NOTHING).fetchone()
        if wrote_nothing is not None and wrote_nothing[0]:
            driver.commit()
    except psycopg.Error:
        return  # the rollback that follows ends the transaction, or finds the connection lost
