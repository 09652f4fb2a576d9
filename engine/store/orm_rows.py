"""ORM objects made from table rows read on the driver (driver_sql.first), as a query would
have loaded them.

The runner changes a case through its ORM `Instance` (set_committed_value, the unit of work
for a new case), but the ORM query of a task command's case and task rows was a quarter of the
command's CPU samples (docs/performance.md, "Saturday afternoon"); read as plain values on the
driver, the rows become the same objects here.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import Column, inspect
from sqlalchemy.orm import Session, make_transient_to_detached

Model = TypeVar("Model")


@cache
def columns(model: type[Any]) -> tuple[Column[Any], ...]:
    """The model's table columns, in the order `detached` takes their values."""
    return tuple(inspect(model).local_table.columns)


@cache
def _attribute_keys(model: type[Any]) -> tuple[str, ...]:
    mapper = inspect(model)
    return tuple(mapper.get_property_by_column(column).key for column in columns(model))


def detached(model: type[Model], values: Sequence[Any]) -> Model:
    """The object a query of the row would have loaded, outside any session: every column
    loaded (nothing left to load lazily, which a detached object could not), no changes."""
    keys = _attribute_keys(model)
    if len(values) != len(keys):
        raise ValueError(f"{model.__name__} has {len(keys)} columns, got {len(values)} values")
    obj = inspect(model).class_manager.new_instance()
    inspect(obj).dict.update(zip(keys, values, strict=True))
    make_transient_to_detached(obj)
    return obj  # type: ignore[no-any-return]


def persistent(session: Session, model: type[Model], values: Sequence[Any]) -> Model:
    """As `detached`, then in the session as if the session had loaded it: changes to it are
    flushed as UPDATEs, and `session.get` finds it."""
    obj = detached(model, values)
    session.add(obj)
    return obj
