"""Alembic environment: runs on the connection handed in by models.migrate."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from models import Base
from models.base import UTCDateTime


def _render_item(kind: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations must not import the models: UTCDateTime is a plain timezone-aware DateTime."""
    if kind == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - always called through models.migrate
    raise RuntimeError("run migrations through `orientation init`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
    compare_type=True,
    render_item=_render_item,
)
with context.begin_transaction():
    context.run_migrations()
