"""PostgreSQL's plan of a query, for tests that a query finds its rows by key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session


def explain(session: Session, sql: str, params: Any) -> str:
    rows = session.connection().exec_driver_sql("EXPLAIN " + sql, params)
    return "\n".join(row[0] for row in rows)


def plan_of_statement(session: Session, statement: Any, params: dict[str, Any]) -> str:
    compiled = statement.compile(dialect=session.bind.dialect)
    return explain(session, str(compiled), {**compiled.params, **params})


def plan_of_call(session: Session, engine: Any, call: Callable[[], Any]) -> tuple[Any, str]:
    """What `call` returns, and the plan of the last statement it sent through `engine`."""
    sent: list[tuple[str, Any]] = []

    def seen(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_args: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", seen)
    try:
        result = call()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    return result, explain(session, *sent[-1])
