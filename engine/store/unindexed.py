"""Conditions a query checks on rows it has found by key, kept from choosing its plan.

PostgreSQL may serve a condition such as "open" or "unresolved" from an index that holds it,
and on a table never analyzed (autovacuum off, or not yet run) it guesses such an index to
be small, then walks the whole of it once per row of the outer query. Written as a CASE, a
condition matches no index, and the rows are found by the keys the query gives
(docs/performance.md, "Sunday, an Intel Xeon"). The rows it keeps are the same: a CASE with
ELSE false rejects what a NULL condition would.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Exists, Select, case, false, true


def only_checked(condition: Any) -> Any:
    """`condition`, checked on each row but never used to find rows. Use it as a condition
    as it is: NOT of it is true where the condition is NULL, NOT of a NULL condition is not."""
    return case((condition, true()), else_=false())


def exists_per_row(query: Select[Any]) -> Exists:
    """EXISTS of `query`, run for each outer row and served by the keys it correlates on.

    PostgreSQL may run an EXISTS instead as a hashed subplan: the subquery's rows all read
    once and hashed, with no regard to the outer row. It does so when it guesses the outer
    rows to be many, as it guesses for any equality on a table never analyzed; for a handful
    of outer rows that reads a whole table. It never rewrites an EXISTS with an OFFSET, so
    OFFSET 0 keeps the subquery as written. For queries whose outer rows are few by their
    keys; where they may be many and the matches sparse, the hashed plan can be the better.
    """
    return query.offset(0).exists()
