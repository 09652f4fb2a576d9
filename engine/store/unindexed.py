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

from sqlalchemy import case, false, true


def only_checked(condition: Any) -> Any:
    """`condition`, checked on each row but never used to find rows. Use it as a condition
    as it is: NOT of it is true where the condition is NULL, NOT of a NULL condition is not."""
    return case((condition, true()), else_=false())
