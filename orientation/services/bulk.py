"""Inserting many rows at once: COPY on PostgreSQL, a multi-row INSERT elsewhere; and the
few rows of several tables in one statement (a submission's).

Used by imports (a region's census is 10,000 doctors). On PostgreSQL a multi-row INSERT of
thousands of rows spends most of its time in the driver building the statement; COPY streams
the rows instead, several times faster. Ids, when wanted, are taken from the table's sequence
first so that the rows can be referred to (events) without reading them back.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnDefault, Connection, bindparam, insert, text
from sqlalchemy.orm import Session

from models.precompiled import Precompiled


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name  # SQLAlchemy's Enum type stores member names

    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return value


def insert_many(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], *, want_ids: bool = False
) -> list[int]:
    """Insert rows (dicts of column values, all with the same keys) in the session's
    transaction; return their ids when asked, in the order of the rows."""
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        statement = insert(model)
        if want_ids:
            result = session.execute(
                statement.returning(model.id, sort_by_parameter_order=True), rows
            )
            return list(result.scalars())
        session.execute(statement, rows)
        return []
    table = model.__table__
    ids: list[int] = []
    if want_ids:
        sequence = session.scalar(
            text("SELECT pg_get_serial_sequence(:table, 'id')"), {"table": table.name}
        )
        ids = list(
            session.scalars(
                text("SELECT nextval(:sequence) FROM generate_series(1, :n)"),
                {"sequence": sequence, "n": len(rows)},
            )
        )
        rows = [{**row, "id": new_id} for row, new_id in zip(rows, ids, strict=True)]
    columns = list(rows[0])
    for name in columns:  # names come from our models, never from the file: checked anyway
        if name not in table.c:
            raise ValueError(f"unknown column {name!r} for {table.name}")
    driver = session.connection().connection.driver_connection
    assert driver is not None
    # Table and column names are the model's own (checked above), not user input.
    copy_sql = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
        for row in rows:
            copy.write_row([_plain(row[name]) for name in columns])
    return ids


def insert_together(
    connection: Connection, batches: Sequence[tuple[Any, Sequence[dict[str, Any]]]]
) -> None:
    """A few rows for each of several tables (model, rows; the rows of a table share their
    keys), in the connection's transaction: one statement on PostgreSQL, one per table
    elsewhere (SQLite has no INSERT in a WITH clause, and no round trips to save).

    Statements run precompiled (models/precompiled.py): the submission's hot path. The rows
    are completed with the columns' Python-side defaults here; errors are the driver's.
    """
    complete = [(model, _with_defaults(model, rows)) for model, rows in batches if rows]
    if connection.dialect.name != "postgresql" or len(complete) < 2:
        for model, rows in complete:
            _insert_of(model, tuple(rows[0])).execute_many(connection, rows)
        return
    # INSERTs in a WITH clause run as one statement: one round trip instead of one per table
    # (four in a questionnaire submission: persons, events, acknowledgement, audit entry).
    shape = tuple((model, len(rows), tuple(rows[0])) for model, rows in complete)
    _together(shape).execute(
        connection,
        {_name(n, i, key): value
         for n, (_, rows) in enumerate(complete) for i, row in enumerate(rows)
         for key, value in row.items()},
    ).close()  # fmt: skip


def insert_returning_id(connection: Connection, model: Any, row: dict[str, Any]) -> int:
    """Insert one row (completed with its Python-side defaults), precompiled; its new id."""
    (complete,) = _with_defaults(model, [row])
    cursor = _insert_of(model, tuple(complete), returning_id=True).execute(connection, complete)
    new_id = int(cursor.fetchone()[0])
    cursor.close()
    return new_id


def _name(table: int, row: int, column: str) -> str:
    return f"t{table}_{row}_{column}"


@cache
def _together(shape: tuple[tuple[Any, int, tuple[str, ...]], ...]) -> Precompiled:
    """WITH t0 AS (INSERT ...), t1 AS (INSERT ...) INSERT ...: the statement for rows of this
    shape (model, row count, columns), with typed parameters (enums, JSON...).

    Text built once per shape, because SQLAlchemy compiles an INSERT inside a WITH clause anew
    on every execution (it has no cache key), which costs more than the round trips it saves.
    """
    inserts, parameters = [], []
    for n, (model, count, columns) in enumerate(shape):
        table = model.__table__
        rows = ", ".join(
            "(" + ", ".join(f":{_name(n, i, c)}" for c in columns) + ")" for i in range(count)
        )
        # Names are the models' own (table and mapped columns), never input: quoted anyway.
        names = ", ".join(f'"{table.c[c].name}"' for c in columns)
        inserts.append(f'INSERT INTO "{table.name}" ({names}) VALUES {rows}')  # noqa: S608
        parameters += [
            bindparam(_name(n, i, c), type_=table.c[c].type) for i in range(count) for c in columns
        ]
    *first, last = inserts
    ctes = ", ".join(f"t{n} AS ({sql})" for n, sql in enumerate(first))
    return Precompiled(text(f"WITH {ctes} {last}").bindparams(*parameters))


def _with_defaults(model: Any, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows completed with the columns' Python-side defaults (created_at...), of which a
    text statement knows nothing."""
    defaults = _defaults_of(model)
    return [
        {
            **{
                key: default.arg if default.is_scalar else default.arg(None)
                for key, default in defaults.items()
                if key not in row
            },
            **row,
        }
        for row in rows
    ]


@cache
def _defaults_of(model: Any) -> dict[str, ColumnDefault]:
    """The columns' Python-side defaults of a model, read from its table once."""
    return {
        column.key: column.default
        for column in model.__table__.columns
        if isinstance(column.default, ColumnDefault)
        and (column.default.is_scalar or column.default.is_callable)
    }


@cache
def _insert_of(model: Any, columns: tuple[str, ...], returning_id: bool = False) -> Precompiled:
    """The table's INSERT of these columns, compiled once per dialect."""
    statement = insert(model)
    if returning_id:
        statement = statement.returning(model.id)
    return Precompiled(statement, column_keys=columns)
