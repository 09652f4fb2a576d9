"""Hot statements run on the driver directly: compiled by SQLAlchemy once, then sent as SQL.

Going through SQLAlchemy's `Connection.execute` costs more Python per statement (compiled-cache
lookup, parameter processing, execution context and result set-up) than psycopg spends
queueing the statement in a pipeline or sqlite3 running it, and a batched write's result is
never read (engine/store/write_batch.py). So a batched statement is compiled once per set of
parameter names, keeping SQLAlchemy's SQL, its bound values and its column types' bind
processors (JSON serialization, SQLite's dates), and later runs are only those processors and
the driver's `execute`. A command's first read (`first`) goes the same way, its row
converted by the columns' result processors.

It runs the statement exactly as SQLAlchemy would have, or not at all: a statement whose
compilation needs more per run (Python-side column defaults, expanding IN lists, escaped
parameter names, a bound value computed by a callable) goes through SQLAlchemy. So does every
statement while anyone listens to statements (echo, `before_cursor_execute` or
`after_cursor_execute` listeners: SQL logging and tracing), so that they still see all of them.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import Executable
from sqlalchemy.sql.compiler import SQLCompiler

Parameters = Mapping[str, Any] | Sequence[Mapping[str, Any]] | None


@dataclass(frozen=True, eq=False)  # compared and hashed by identity (the result cache's key)
class DriverStatement:
    """A compiled statement: its SQL in the driver's placeholders (psycopg's `%(name)s`,
    sqlite3's `?` in `order`), the values bound in the statement itself, and the bind
    processors by parameter name."""

    sql: str
    bound: Mapping[str, Any]
    processors: Mapping[str, Callable[[Any], Any]]
    order: tuple[str, ...] | None  # positional placeholders: the parameter of each
    result_types: tuple[Any, ...] = ()  # a read's column types, in order

    def parameters(self, given: Mapping[str, Any]) -> dict[str, Any] | tuple[Any, ...]:
        """The values the driver gets, as SQLAlchemy would send them: every processor
        applied, to None as well (a JSON column's None is JSON null, not SQL NULL)."""
        values = {**self.bound, **given}
        for name, process in self.processors.items():
            values[name] = process(values[name])
        if self.order is None:
            return values
        return tuple(values[name] for name in self.order)

    def run(self, driver: Any, params: Parameters) -> Any:
        """Run (or, in a psycopg pipeline, queue) the statement on a DB-API connection; the
        cursor's rowcount is that of all its rows."""
        cursor = driver.cursor()
        if isinstance(params, Sequence):
            cursor.executemany(self.sql, [self.parameters(row) for row in params])
        else:
            cursor.execute(self.sql, self.parameters(params or {}))
        return cursor


# per dialect (one process may hold a SQLite and a PostgreSQL database, and one statement
# object compiles differently for each), per statement object (built once, at import or by a
# cached builder), per the parameter names given: None where SQLAlchemy must run it
_ByNames = dict[frozenset[str], DriverStatement | None]
_compiled: weakref.WeakKeyDictionary[Dialect, weakref.WeakKeyDictionary[Executable, _ByNames]] = (
    weakref.WeakKeyDictionary()
)


def compiled(
    statement: Executable, params: Parameters, connection: Connection
) -> DriverStatement | None:
    """The statement ready to run on the driver, or None when SQLAlchemy must run it."""
    events = connection.dispatch
    if connection.engine.echo or events.before_cursor_execute or events.after_cursor_execute:
        return None
    if isinstance(params, Sequence):
        if not params:
            return None
        names = frozenset(params[0])
        if any(frozenset(row) != names for row in params):
            return None  # rows with different columns: SQLAlchemy compiles per row set
    else:
        names = frozenset(params or ())
    of_dialect = _compiled.get(connection.dialect)
    if of_dialect is None:
        of_dialect = _compiled.setdefault(connection.dialect, weakref.WeakKeyDictionary())
    by_names = of_dialect.get(statement)
    if by_names is None:
        by_names = of_dialect.setdefault(statement, {})
    if names not in by_names:
        by_names[names] = _compile(statement, names, connection)
    return by_names[names]


def execute(statement: Executable, params: Parameters, connection: Connection) -> Any:
    """Run (or, in a psycopg pipeline, queue) a write on the driver when it can be, else
    through SQLAlchemy; the DB-API cursor, whose rowcount is that of all its rows. An error
    from the driver path is the driver's own (write_batch reads a pipeline's that way)."""
    direct = compiled(statement, params, connection)
    if direct is None:
        return connection.execute(statement, params).context.cursor
    return direct.run(connection.connection.driver_connection, params)


def first(statement: Executable, params: Mapping[str, Any], connection: Connection) -> Any:
    """A read's first row (a tuple, or None), run on the driver when it can be, its values
    converted as SQLAlchemy's `Row` would hold them (JSON, SQLite's dates, aware datetimes).

    What runs around a statement in SQLAlchemy runs here too: `before_execute` listeners
    (write_batch sends queued writes there) and the dialect's `do_execute` listeners
    (pipelined_begin sends BEGIN with the statement); a driver error goes through
    SQLAlchemy's error handling, so a lost connection is invalidated and the runner retries
    as before. A task command's first read run this way takes 8% off a case's instructions
    (docs/performance.md, "Saturday afternoon")."""
    direct = compiled(statement, params, connection)
    if direct is None:
        return connection.execute(statement, params).first()
    for listener in connection.dispatch.before_execute:
        listener(connection, statement, (), params, {})
    values = direct.parameters(params)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for handled in connection.dialect.dispatch.do_execute:
            if handled(cursor, direct.sql, values, None):
                break
        else:
            cursor.execute(direct.sql, values)
        row = cursor.fetchone()
    except connection.dialect.loaded_dbapi.Error as exc:
        # SQLAlchemy's own handling: wrapped, the cursor closed, a lost connection (and the
        # pool's older ones) invalidated, handle_error listeners called
        connection._handle_dbapi_exception(exc, direct.sql, values, cursor, None)
    if row is None:
        cursor.close()
        return None
    convert = _results.get(direct)
    if convert is None:  # psycopg makes the description anew each time it is asked
        convert = _result_processors(direct, cursor.description, connection.dialect)
    cursor.close()
    return tuple(value if c is None else c(value) for c, value in zip(convert, row, strict=True))


# a compiled read's result processors, from the types SQLAlchemy compiled for its columns and
# the driver's type codes of its first result, as CursorResult finds them
_results: weakref.WeakKeyDictionary[DriverStatement, tuple[Callable[[Any], Any] | None, ...]] = (
    weakref.WeakKeyDictionary()
)


def _result_processors(
    direct: DriverStatement, description: Any, dialect: Dialect
) -> tuple[Callable[[Any], Any] | None, ...]:
    found = tuple(
        column_type._cached_result_processor(dialect, entry[1])
        for column_type, entry in zip(direct.result_types, description, strict=True)
    )
    _results[direct] = found
    return found


def rowcount(statement: Executable, params: Parameters, connection: Connection) -> int:
    """Run a write at once (SQLite) and return the rows it changed; a driver error comes out
    as SQLAlchemy's (an IntegrityError, "database is locked"), as from `Connection.execute`."""
    dbapi = connection.dialect.loaded_dbapi
    try:
        return int(execute(statement, params, connection).rowcount)
    except dbapi.Error as exc:
        raise DBAPIError.instance(str(statement), params, exc, dbapi.Error) from exc


def _compile(
    statement: Executable, names: frozenset[str], connection: Connection
) -> DriverStatement | None:
    dialect = connection.dialect
    if dialect.paramstyle not in ("pyformat", "qmark"):
        return None
    compiler = statement.compile(dialect=dialect, column_keys=sorted(names))  # type: ignore[attr-defined]
    assert isinstance(compiler, SQLCompiler)
    if (
        compiler.insert_prefetch
        or compiler.update_prefetch
        or compiler.literal_execute_params
        or compiler.post_compile_params
        or compiler.escaped_bind_names
        or compiler.returning
    ):
        return None
    bound: dict[str, Any] = {}
    processors: dict[str, Callable[[Any], Any]] = {}
    for bind, name in compiler.bind_names.items():
        if bind.callable is not None:
            return None
        if name not in names:
            if bind.required:
                return None  # SQLAlchemy would refuse the run: let it say why
            bound[name] = bind.value
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors[name] = process
    if not names <= set(compiler.bind_names.values()):
        return None  # a value for no parameter of the statement: SQLAlchemy drops it
    order = tuple(compiler.positiontup or ()) if dialect.paramstyle == "qmark" else None
    result_types = tuple(entry.type for entry in compiler._result_columns)
    return DriverStatement(compiler.string, bound, processors, order, result_types)
