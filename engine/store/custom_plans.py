"""Plans made for the values at hand, for statements whose best plan depends on them.

psycopg prepares a statement after its fifth run on a connection, and PostgreSQL may then
settle on a generic plan, made once for any parameter values. A generic plan cannot use a
partial index whose condition (state = 'open', status IN ('running', 'waiting')) the
statement meets only through a parameter, and it guesses a third of the rows for every
"before this moment". For the stuck detector's statement, at 1M cases, the generic plan
took 28 s without statistics and 1.4 s with them, against 31-46 ms for plans made for the
values (docs/performance.md, "Sunday, a slower AMD EPYC"). Planning anew costs 1-3 ms.
Writing the fixed conditions as literals would let a generic plan use the partial indexes,
but not judge the moments.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session


def plan_for_the_values(session: Session) -> None:
    """Until the transaction ends, PostgreSQL plans each statement for its values: the
    caller's later statements in the same transaction too."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
