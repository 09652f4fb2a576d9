"""Database engines and sessions for SQLite (embedded default) and PostgreSQL.

SQLite runs in WAL mode so readers never wait for the writer; command transactions begin with
`BEGIN IMMEDIATE` so two commands never both read and then fight over the write lock.
On PostgreSQL commands run under READ COMMITTED and are fenced by the instance `version`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from engine.store import pipelined_begin, pool_liveness, read_only_end, write_batch

WRITE_OPTION = "govflow_write"


def _prepare_sqlite_path(url: str) -> None:
    parsed = make_url(url)
    database = parsed.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the URL; `postgresql://` is taken to mean the psycopg 3 driver."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    # liveness is checked after idling only (pool_liveness), not by a pre-ping every checkout
    ping_after_idle_s = kwargs.pop("ping_after_idle_s", pool_liveness.PING_AFTER_IDLE_S)
    if url.startswith("sqlite"):
        _prepare_sqlite_path(url)
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    # a command may open a second (read) session while it holds its write session, so the
    # pool must hold two connections per request thread (see engine.api.app) plus workers'
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 60)
    # the driver in autocommit mode; pipelined_begin sends BEGIN with each first statement
    kwargs.setdefault("isolation_level", "AUTOCOMMIT")
    engine = create_engine(url, **kwargs)
    if kwargs["isolation_level"] == "AUTOCOMMIT":
        pipelined_begin.install(engine)
        read_only_end.install(engine)
    if not kwargs.get("pool_pre_ping"):
        pool_liveness.install(engine, ping_after_idle_s)
    write_batch.install(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get(WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


class Database:
    """One engine and its session factories: plain sessions and write (command) sessions."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **kwargs)
        writer = self.engine.execution_options(**{WRITE_OPTION: True})
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._sessions = sessionmaker(writer, expire_on_commit=False)
        self._command_sessions = sessionmaker(writer, expire_on_commit=False, autoflush=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction that may write; commits on success.

        On SQLite it takes the write lock up front (BEGIN IMMEDIATE): a deferred transaction
        that reads and then writes fails at once with "database is locked" in WAL mode if
        another writer committed meanwhile, whatever the busy timeout.
        """
        with self._sessions() as session, session.begin():
            yield session
            write_batch.send(session)

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A transaction that only reads; on SQLite it never waits for or blocks a writer."""
        with self._read_sessions() as session, session.begin():
            yield session

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A command's transaction: the write lock up front, and no autoflush, so the
        runner's version fence is the first write the transaction makes."""
        with self._command_sessions() as session, session.begin():
            yield session
            session.flush()  # anything the unit of work holds goes before the last batch
            write_batch.send(session, commit=True)

    def dispose(self) -> None:
        self.engine.dispose()
