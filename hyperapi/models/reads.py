"""Hot read statements run straight on the driver's cursor, compiled once per dialect.

The read path runs a handful of fixed Core SELECTs (a token's user and its revocation, an
item's validators, an item's row) on every request. SQLAlchemy's ``Connection.execute``
spends most of a primary-key SELECT's time on per-call machinery: the compiled cache key,
the execution context, events, the result object. Measured with ``bench/hotpath.py``
on SQLite, that machinery was about 45 us per statement and the driver's own execute and
fetch under 10 us. A :class:`FastSelect` keeps what SQLAlchemy compiled (the SQL text, the
bind and result processors, so values come back exactly as ``execute`` gives them) and
runs it on the connection's DBAPI cursor.

Nothing else changes: the statement runs on the request's own pooled connection, in
whatever transaction that connection is in. Should the driver raise, its error is handed
to SQLAlchemy's own handler, after beginning as ``Connection.execute`` would have (the
``begin`` hooks: hyperapi.models clears its COMMITTING mark there), so that SQLAlchemy's
error handling applies as before: the error wrapped in ``DBAPIError``, a dead connection
detected and the pool invalidated, the ``handle_error`` hooks (hyperapi.models marks a lost
connection retryable). The statement is not run again: in a PostgreSQL transaction the
failure has aborted the transaction, and a re-run would only raise "current transaction is
aborted" in place of the real error (nor would it begin before finding the connection
closed, leaving a stale COMMITTING mark to call a dead read "commit in doubt"). And when
anything listens for ``before_cursor_execute`` or ``after_cursor_execute`` (the tests that
count or break statements do), every statement takes SQLAlchemy's path, so that they see
it.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.sql import Select


class _Plan:
    """One statement compiled for one dialect."""

    __slots__ = ("binds", "names", "positional", "processed", "row", "sql")

    def __init__(self, statement: Select, dialect):
        compiled = statement.compile(dialect=dialect)
        self.sql = compiled.string
        self.positional = dialect.positional
        names = list(compiled.positiontup) if self.positional else list(compiled.binds)
        self.names = names
        #: (name, processor or None) for each bind parameter, in the driver's order.
        self.binds = [
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names
        ]
        columns = list(statement.selected_columns)
        self.row = namedtuple("Row", [column.key for column in columns])
        results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        #: (index, processor) of the columns whose values need converting.
        self.processed = [(i, p) for i, p in enumerate(results) if p is not None]

    def parameters(self, params: dict[str, Any]):
        values = [
            params[name] if processor is None else processor(params[name])
            for name, processor in self.binds
        ]
        return values if self.positional else dict(zip(self.names, values, strict=True))

    def values(self, raw) -> list:
        values = list(raw)
        for index, processor in self.processed:
            value = values[index]
            if value is not None:
                values[index] = processor(value)
        return values


class FastSelect:
    """A Core SELECT whose first row is fetched on the DBAPI cursor (see the module)."""

    def __init__(self, statement: Select):
        self.statement = statement
        self.plans: dict[str, _Plan] = {}

    def plan(self, dialect) -> _Plan:
        plan = self.plans.get(dialect.name)
        if plan is None:
            plan = self.plans[dialect.name] = _Plan(self.statement, dialect)
        return plan

    def first(self, connection: Connection, params: dict[str, Any]):
        """The first row (attributes named like the selected columns), or None."""
        values = self.first_values(connection, params)
        return None if values is None else self.plan(connection.dialect).row._make(values)

    def first_values(self, connection: Connection, params: dict[str, Any]) -> list | None:
        """The first row's values, in the order of the selected columns, or None."""
        dialect = connection.dialect
        plan = self.plan(dialect)
        dispatch = connection.dispatch
        if not (dispatch.before_cursor_execute or dispatch.after_cursor_execute):
            try:
                cursor = connection.connection.dbapi_connection.cursor()
                try:
                    cursor.execute(plan.sql, plan.parameters(params))
                    raw = cursor.fetchone()
                finally:
                    cursor.close()
            except dialect.loaded_dbapi.Error as error:
                # SQLAlchemy's handling of this very error (module doc); it raises.
                if not connection.in_transaction():
                    connection.begin()
                connection._handle_dbapi_exception(error, plan.sql, params, None, None)
            return None if raw is None else plan.values(raw)
        row = connection.execute(self.statement, params).first()
        return None if row is None else list(row)
