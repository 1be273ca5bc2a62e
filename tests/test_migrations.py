"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from flask import Flask
from sqlalchemy import Connection, Engine, ForeignKeyConstraint, insert, inspect, text
from sqlalchemy.engine import make_url

from models import Base, Person, Reason, Request, RequestEvent, Source, Status, Territory
from models.engine import make_engine
from models.migrate import MIGRATIONS
from tests.conftest import IN_CI, PG_ENV


def _fk_shape(constraint: ForeignKeyConstraint) -> tuple[str, tuple[str, ...], str]:
    return constraint.parent.name, tuple(constraint.column_keys), constraint.referred_table.name


def _held_inline(connection: Connection, constraint: ForeignKeyConstraint) -> bool:
    """SQLite's own account of a constraint matches the model's: name, columns, ON DELETE."""
    table = constraint.parent.name
    sql = connection.scalar(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table"),
        {"table": table},
    )
    # PRAGMA foreign_key_list: id, seq, table, from, to, on_update, on_delete, match.
    rows = connection.exec_driver_sql(f"PRAGMA foreign_key_list({table})").all()
    held = {(row[3], row[2], row[4], row[6]) for row in rows}
    on_delete = (constraint.ondelete or "NO ACTION").upper()
    return f"CONSTRAINT {constraint.name} REFERENCES" in sql and all(
        (e.parent.name, e.column.table.name, e.column.name, on_delete) in held
        for e in constraint.elements
    )


def _inline_foreign_keys_checked(connection: Connection, differences: list[Any]) -> list[Any]:
    """The differences, less the foreign keys SQLite holds as written with their column.

    A column added by ALTER TABLE ADD COLUMN carries its constraint inline (SQLite adds no
    table constraint to an existing table, and rebuilding `requests` would delete its persons
    and events by cascade). SQLAlchemy reflects such a constraint without its name nor its ON
    DELETE ("extremely difficult to parse inline constraints"): it shows as removed, and the
    model's as added. Those two are checked here against SQLite's own account instead."""
    if connection.dialect.name != "sqlite":
        return differences
    unnamed = {_fk_shape(d[1]): d for d in differences if d[0] == "remove_fk" and not d[1].name}
    confirmed: list[Any] = []
    for difference in differences:
        shape = _fk_shape(difference[1]) if difference[0] == "add_fk" else None
        if shape in unnamed and _held_inline(connection, difference[1]):
            confirmed += [difference, unnamed[shape]]
    return [d for d in differences if not any(d is c for c in confirmed)]


def test_migrations_match_the_models(app: Flask) -> None:
    engine = app.extensions["orientation.engine"]
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
        differences = _inline_foreign_keys_checked(connection, differences)
    assert differences == []


@pytest.fixture(params=["sqlite", "postgresql"])
def bare_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database (no revision yet), to migrate step by step."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'steps.sqlite3'}")
        yield engine
        engine.dispose()
        return
    base = os.environ.get(PG_ENV, "").strip()
    if not base:
        if IN_CI:
            pytest.fail(f"{PG_ENV} is not set: CI must run every test on PostgreSQL too")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg:///test)")
    schema = f"orientation_steps_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _forward_key(territory_id: int, original_id: int) -> str:
    """services.intake.scoped_key(territory_id, f"forward:{original_id}"), as stored."""
    return hashlib.sha256(f"{territory_id}:forward:{original_id}".encode()).hexdigest()


def _request(
    connection: Connection, rid: int, territory_id: int, reference: str, **values: Any
) -> None:
    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    connection.execute(insert(Request.__table__), [{
        "id": rid, "territory_id": territory_id, "reference": reference,
        "status": Status.ELIGIBLE, "source": Source.QUESTIONNAIRE, "commune_insee": "59350",
        "postal_code": "59000", "reason": Reason.GP_LEFT, "created_at": at, "updated_at": at,
        **values,
    }])  # fmt: skip
    connection.execute(insert(Person.__table__), [{
        "territory_id": territory_id, "request_id": rid, "first_name": "Jeanne",
        "last_name": "Martin", "birth_date": date(1980, 5, 4),
    }])  # fmt: skip


def _closing(connection: Connection, rid: int, territory_id: int, note: str) -> None:
    connection.execute(insert(RequestEvent.__table__), [{
        "territory_id": territory_id, "request_id": rid, "at": datetime(2026, 11, 2, tzinfo=UTC),
        "kind": "status", "from_status": "out_of_territory", "to_status": "closed", "note": note,
    }])  # fmt: skip


def _links(engine: Engine) -> dict[int, int | None]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, forwarded_to_id FROM requests ORDER BY id"))
        return {rid: copy for rid, copy in rows}


def test_0016_links_requests_forwarded_before_it_to_their_copies_from_the_closing_notes(
    bare_engine: Engine,
) -> None:
    _migrate(bare_engine, "0015")
    forwarded = {"status": Status.CLOSED, "closed_reason": "transmise à CPTS Grand Lille"}
    with bare_engine.begin() as connection:
        lys, lille = (
            connection.execute(
                insert(Territory.__table__).returning(Territory.__table__.c.id),
                [{"name": name, "slug": slug}],
            ).scalar_one()
            for name, slug in (("CPTS Lys", "lys"), ("CPTS Grand Lille", "lille"))
        )
        # 1 forwarded since 0015 (a key scoped to the copy's CPTS), 3 before it (the bare key).
        _request(connection, 1, lys, "AAAA-0001", **forwarded)
        _closing(connection, 1, lys, "transmise à CPTS Grand Lille (BBBB-0002)")
        _request(connection, 2, lille, "BBBB-0002", submission_key=_forward_key(lille, 1))
        _request(connection, 3, lys, "AAAA-0003", **forwarded)
        _closing(connection, 3, lys, "transmise à CPTS Grand Lille (BBBB-0004)")
        _request(connection, 4, lille, "BBBB-0004", submission_key="forward:3")
        # 5: a coordinator's closing reason typed to read like the forwarding note, naming
        # another person's request (2): no link, whatever the note says.
        _request(connection, 5, lys, "AAAA-0005", status=Status.CLOSED,
                 closed_reason="transmise à CPTS Grand Lille (BBBB-0002)")  # fmt: skip
        _closing(connection, 5, lys, "transmise à CPTS Grand Lille (BBBB-0002)")
        # 6: forwarded, then anonymised (its notes emptied): no link to the named copy (7).
        _request(connection, 6, lys, "AAAA-0006", anonymised_at=datetime(2026, 11, 30, tzinfo=UTC),
                 **forwarded)  # fmt: skip
        _closing(connection, 6, lys, "")
        _request(connection, 7, lille, "BBBB-0007", submission_key=_forward_key(lille, 6))
        # 8: closed for another reason.
        _request(connection, 8, lys, "AAAA-0008", status=Status.CLOSED, closed_reason="injoignable")
        _closing(connection, 8, lys, "injoignable")

    _migrate(bare_engine, "0016")
    expected = {1: 2, 2: None, 3: 4, 4: None, 5: None, 6: None, 7: None, 8: None}
    assert _links(bare_engine) == expected

    # Round trip: down keeps every row (no table rebuilt, nothing deleted by cascade), up
    # links the same requests again.
    _migrate(bare_engine, "0015", down=True)
    with bare_engine.connect() as connection:
        assert "forwarded_to_id" not in {
            c["name"] for c in inspect(connection).get_columns("requests")
        }
        assert connection.scalar(text("SELECT count(*) FROM persons")) == 8
    _migrate(bare_engine, "head")
    assert _links(bare_engine) == expected

    # A copy deleted outright leaves its original pointing at nothing (ON DELETE SET NULL).
    with bare_engine.begin() as connection:
        connection.execute(text("DELETE FROM requests WHERE id = 4"))
    links = _links(bare_engine)
    assert 4 not in links and links[3] is None and links[1] == 2
