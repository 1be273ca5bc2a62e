"""Inserting many rows at once: COPY on PostgreSQL, a multi-row INSERT elsewhere.

Used by imports (a region's census is 10,000 doctors). On PostgreSQL a multi-row INSERT of
thousands of rows spends most of its time in the driver building the statement; COPY streams
the rows instead, several times faster. Ids, when wanted, are taken from the table's sequence
first so that the rows can be referred to (events) without reading them back.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.orm import Session


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
