"""Gap-tolerant named counters that two transactions never hand out twice.

The increment is one `UPDATE ... RETURNING`, which takes the row lock on PostgreSQL and runs
under the write lock on SQLite; the first use of a name inserts it inside a savepoint so a
concurrent first use simply retries the update.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.store.models import Sequence


def next_value(session: Session, name: str) -> int:
    for _ in range(3):
        value = session.scalar(
            update(Sequence)
            .where(Sequence.name == name)
            .values(value=Sequence.value + 1)
            .returning(Sequence.value)
        )
        if value is not None:
            return int(value)
        try:
            with session.begin_nested():
                session.add(Sequence(name=name, value=1))
            return 1
        except IntegrityError:
            continue
    raise RuntimeError(f"could not advance sequence {name!r}")
