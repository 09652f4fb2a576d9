"""Statements the command path runs every time, built once.

Building a SQLAlchemy statement and computing its cache key costs more Python than sending
it (docs/performance.md), so the updates a command makes are built once per column set and
run with bound values.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Table, bindparam, update
from sqlalchemy.sql.dml import Update


@cache
def update_where(table: Table, keys: tuple[str, ...], columns: frozenset[str]) -> Update:
    """UPDATE <table> SET <column> = :new_<column>, ... WHERE <key> = :old_<key> AND ...

    Run it with `bound(keys, values)`. (A bound value may not share a column's name.)"""
    return (
        update(table)
        .where(*(table.c[key] == bindparam(f"old_{key}") for key in keys))
        .values({name: bindparam(f"new_{name}") for name in sorted(columns)})
    )


def bound(keys: dict[str, object], values: dict[str, object]) -> dict[str, object]:
    """The bound values `update_where` expects: the keys' and the new column values."""
    return {
        **{f"old_{name}": value for name, value in keys.items()},
        **{f"new_{name}": value for name, value in values.items()},
    }
