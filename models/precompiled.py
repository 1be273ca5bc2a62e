"""Statements compiled once and run on the driver's cursor: the submission's hot path.

SQLAlchemy's `Connection.execute` is built for any statement with any parameters: for each
call it looks the compiled form up in its cache, builds an execution context, turns the
parameters through their types and wraps the cursor in a Result. For a questionnaire POST
(one SELECT and five INSERTs) that bookkeeping cost more than the database's own work.

`Precompiled` keeps what does not change from one call to the next, per dialect: the SQL text
SQLAlchemy compiled from the models, the order of its parameters and their types' bind
processors (enums to their names, datetimes to SQLite's text...). A call only converts the
values and hands them to the DBAPI cursor of the Connection it is given, inside that
connection's transaction. The SQL is still SQLAlchemy's; only the per-call machinery is left out.

Errors are the driver's own (`dialect.loaded_dbapi.IntegrityError`...), not SQLAlchemy's. A
connection lost meanwhile is still replaced: the pool throws a connection away when its
rollback at checkin fails.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

_REQUIRED = object()  # a parameter the caller must give (no value in the statement)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool  # SQLite's "?" (a tuple of values), or named (psycopg's %(name)s: a dict)
    # Each parameter, in the statement's order: its name, the value written in the statement
    # itself (a literal) or _REQUIRED, and its type's conversion (enums to names...) if any.
    slots: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]


class Precompiled:
    """One Core statement (SELECT, INSERT, text()), compiled once per dialect.

    `column_keys`: for an INSERT, the columns the rows give (the others keep their server
    defaults); Python-side column defaults are not applied, the rows must carry them.
    """

    def __init__(self, statement: ClauseElement, column_keys: Sequence[str] | None = None):
        self.statement = statement
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._by_dialect: dict[str, _Compiled] = {}

    def _compiled(self, dialect: Dialect) -> _Compiled:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self._compile(dialect)
            if compiled.literal_execute_params:
                # Literals SQLAlchemy writes into the SQL at execution time (the separator of
                # aggregate_strings...), written in now, once. The statement's other parameters
                # then need a placeholder value (bindparam("name", None)).
                compiled = self._compile(dialect, render_postcompile=True)
            binds = compiled.binds
            names = compiled.positiontup if compiled.positional else list(binds)
            slots = []
            for name in names or ():
                bind = binds[name]
                value = _REQUIRED if bind.required else bind.effective_value
                convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
                slots.append((name, value, convert))
            found = _Compiled(compiled.string, compiled.positional, tuple(slots))
            self._by_dialect[dialect.name] = found
        return found

    def _compile(self, dialect: Dialect, **compile_kwargs: Any) -> SQLCompiler:
        compiled = self.statement.compile(
            dialect=dialect, column_keys=self.column_keys, compile_kwargs=compile_kwargs
        )
        assert isinstance(compiled, SQLCompiler)  # a statement, not DDL
        return compiled

    @staticmethod
    def _parameters(compiled: _Compiled, values: Mapping[str, Any]) -> Any:
        converted = []
        for name, constant, convert in compiled.slots:
            value = values[name] if constant is _REQUIRED or name in values else constant
            converted.append(convert(value) if convert is not None else value)
        if compiled.positional:
            return converted
        return dict(zip((slot[0] for slot in compiled.slots), converted, strict=True))

    def execute(self, connection: Connection, values: Mapping[str, Any]) -> Any:
        """Run with one set of values; return the driver's cursor (for RETURNING, fetch)."""
        compiled = self._compiled(connection.dialect)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(compiled.sql, self._parameters(compiled, values))
        return cursor

    def execute_many(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run once per row (the driver's executemany)."""
        compiled = self._compiled(connection.dialect)
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        if len(rows) == 1:
            cursor.execute(compiled.sql, self._parameters(compiled, rows[0]))
        else:
            cursor.executemany(compiled.sql, [self._parameters(compiled, r) for r in rows])
        cursor.close()
