"""Pooled PostgreSQL connections checked before use only after they sat idle.

SQLAlchemy's `pool_pre_ping` sends `SELECT 1` at every checkout: one more round trip for every
request and command (about a tenth of the API server's time under load, docs/performance.md).
A connection that was in use a moment ago is almost surely alive, so, like HikariCP's
`aliveBypassWindowMs` (500 ms), a connection is pinged only when it was checked in more than
`idle_seconds` ago. One found dead is replaced before the caller sees it. A connection that
dies within the window (the server restarted under load) fails its statement instead; commands
are retried on a fresh connection by the runner (`engine.runtime.runner`), like any request
that was running on a connection when it died.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

PING_AFTER_IDLE_S = 0.5
_IDLE_SINCE = "govflow_idle_since"


def install(engine: Engine, idle_seconds: float = PING_AFTER_IDLE_S) -> None:
    """Ping a connection at checkout when it has been idle for `idle_seconds` or longer."""

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # the pool discards the connection and checks out a new one (up to 3 times)
            raise DisconnectionError(f"pooled connection found dead after idling: {exc}") from exc
