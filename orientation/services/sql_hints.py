"""Hints that steer a database's planner, kept in one place with the reason for each."""

from __future__ import annotations

from typing import Any

from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op


def unindexed_on_sqlite(column: Any) -> Any:
    """The column behind a unary plus, which keeps SQLite from using an index on it (its
    documented way to disqualify a term from index use). For SQLite only: PostgreSQL has no
    unary plus for timestamps."""
    return UnaryExpression(column, operator=custom_op("+"), type_=column.type)
