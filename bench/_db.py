"""Databases for the benches: a fresh SQLite file and a private PostgreSQL schema (127.0.0.1)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from geo.communes import gazetteer
from models.engine import make_engine
from models.migrate import load_communes, upgrade

PG_URL = os.environ.get(
    "ORIENTATION_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test"
)


def _prepare(engine: Engine) -> None:
    upgrade(engine)
    load_communes(engine, list(gazetteer().by_insee.values()))


@contextmanager
def sqlite() -> Iterator[Engine]:
    """A fresh, migrated SQLite file, deleted afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.sqlite3'}")
        _prepare(engine)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def postgres() -> Iterator[Engine | None]:
    """A private schema in the local PostgreSQL, dropped afterwards (None if unreachable)."""
    url = make_url(PG_URL)
    if url.host not in (None, "127.0.0.1", "localhost"):
        raise SystemExit("benches only talk to 127.0.0.1")
    schema = f"orientation_bench_{uuid.uuid4().hex[:8]}"
    try:
        admin = make_engine(PG_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL here: say so and go on
        print(f"(PostgreSQL skipped: {exc.__class__.__name__})")
        yield None
        return
    scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(scoped.render_as_string(hide_password=False))
    try:
        _prepare(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
