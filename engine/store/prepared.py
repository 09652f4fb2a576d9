"""Statements the command path runs every time, built once.

Building a SQLAlchemy statement and computing its cache key costs more Python than sending
it (docs/performance.md), so the updates a command makes are built once per column set and
run with bound values.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.sql.dml import Update


def update_where(
    table: Table, where: dict[str, Any], values: dict[str, Any]
) -> tuple[Update, dict[str, Any]]:
    """UPDATE <table> SET <values> WHERE <column> = <value> AND ... for each of `where`: the
    statement (built once per set of column names) and the bound values to run it with."""
    statement = _update(table, tuple(where), frozenset(values))
    bound = {f"old_{name}": value for name, value in where.items()}
    bound.update((f"new_{name}", value) for name, value in values.items())
    return statement, bound


@cache
def _update(table: Table, keys: tuple[str, ...], columns: frozenset[str]) -> Update:
    # a bound value may not share the name of a column the statement sets
    return (
        update(table)
        .where(*(table.c[key] == bindparam(f"old_{key}") for key in keys))
        .values({name: bindparam(f"new_{name}") for name in sorted(columns)})
    )
