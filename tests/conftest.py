"""Fixtures: the app on SQLite and, when ORIENTATION_TEST_DATABASE_URL is set, on PostgreSQL.

Every test that asks for `app`, `client` or `session` runs once per database. The schema is
built once per run with the real migrations; SQLite tests get a copy of that file, PostgreSQL
tests share a private schema that is emptied after each test.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import (
    Accepting,
    Base,
    Doctor,
    LocationPrecision,
    Person,
    Reason,
    Request,
    Role,
    Source,
    Status,
    Territory,
    User,
    VolunteerStatus,
    utcnow,
)
from models.engine import make_engine, make_sessionmaker
from models.migrate import load_communes, upgrade
from orientation import Settings, create_app
from orientation.services import accounts
from orientation.services.household import store_household
from orientation.services.references import new_reference
from orientation.services.territories import TerritoryInput, add_territory

PG_ENV = "ORIENTATION_TEST_DATABASE_URL"
IN_CI = os.environ.get("CI", "").lower() == "true"
REFERENCE_TABLES = {"communes", "alembic_version"}
PASSWORD = "correct-horse-42-battery"


def _prepare(engine: Engine) -> None:
    upgrade(engine)
    load_communes(engine, list(gazetteer().by_insee.values()))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    _prepare(engine)
    engine.dispose()
    return path


REDIS_URL = "redis://127.0.0.1:6379"


def require_redis() -> None:
    """Skip a test of limits shared through Redis when none answers on loopback; in CI that
    is a failure, as a missing PostgreSQL is."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.exceptions.RedisError:
        if IN_CI:
            pytest.fail(f"no Redis at {REDIS_URL}: CI must test the limits shared through it")
        pytest.skip(f"no Redis at {REDIS_URL}: start redis-server to test shared limits")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV, "").strip()
    if not base:
        if IN_CI:
            pytest.fail(f"{PG_ENV} is not set: CI must run every test on PostgreSQL too")
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql+psycopg:///test)")
    schema = f"orientation_test_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).set(drivername="postgresql+psycopg")
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    engine = make_engine(rendered)
    _prepare(engine)
    engine.dispose()
    try:
        yield rendered
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated database with the reference communes, empty of everything else."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.sqlite3"
        shutil.copy(template, path)
        yield f"sqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
    engine = make_engine(url)
    tables = [t.name for t in Base.metadata.sorted_tables if t.name not in REFERENCE_TABLES]
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env="development",
        instance_path=tmp_path / "instance",
        database_url=database_url,
        secret_key="test-secret-" + "x" * 40,
        base_url="http://localhost",
        testing=True,
        extra={"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False},
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    yield application
    application.extensions["orientation.engine"].dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """An unscoped session on the test database (for arranging and checking)."""
    db = make_sessionmaker(app.extensions["orientation.engine"])()
    yield db
    db.close()


@pytest.fixture
def make_territory(session: Session) -> Callable[..., Territory]:
    counter = iter(range(1, 1000))

    def _make(
        name: str | None = None, communes: list[str] | None = None, **kwargs: Any
    ) -> Territory:
        n = next(counter)
        territory = add_territory(
            session,
            gazetteer(),
            TerritoryInput(
                name=name or f"CPTS Test {n}",
                insee_codes=communes or ["59017", "59431", "59143"],
                contact_phone=f"03 20 00 00 {n:02d}",
                contact_email=f"cpts{n}@example.org",
                **kwargs,
            ),
        )
        session.commit()
        return territory

    return _make


@pytest.fixture
def make_user(session: Session) -> Callable[..., User]:
    def _make(territory: Territory | None, role: Role = Role.COORDINATOR, email: str = "") -> User:
        user = accounts.create_user(
            session,
            email=email or f"{role.value}-{uuid.uuid4().hex[:6]}@example.org",
            full_name="Test User",
            role=role,
            password=PASSWORD,
            territory_id=territory.id if territory else None,
        )
        session.commit()
        return user

    return _make


@pytest.fixture
def make_doctor(session: Session) -> Callable[..., Doctor]:
    counter = iter(range(1, 100_000))

    def _make(territory: Territory, insee: str = "59017", **kwargs: Any) -> Doctor:
        n = next(counter)
        commune = gazetteer().by_insee[insee]
        values: dict[str, Any] = {
            "territory_id": territory.id,
            "rpps": f"{10000000000 + n}",
            "first_name": "Alex",
            "last_name": f"Medecin{n}",
            "commune_insee": insee,
            "postal_code": commune.postal_codes[0],
            "lat": commune.lat,
            "lon": commune.lon,
            "location_precision": LocationPrecision.COMMUNE,
            "volunteer_status": VolunteerStatus.VOLUNTEER,
            "accepting": Accepting.YES,
            "capacity_left": 3,
            "confirmed_at": utcnow() - timedelta(days=10),
        }
        values.update(kwargs)
        doctor = Doctor(**values)
        session.add(doctor)
        session.commit()
        return doctor

    return _make


@pytest.fixture
def make_request(session: Session) -> Callable[..., Request]:
    def _make(territory: Territory, status: Status = Status.ELIGIBLE, **kwargs: Any) -> Request:
        created: datetime = kwargs.pop("created_at", utcnow())
        persons = kwargs.pop("persons", None) or [("Jeanne", "Martin", date(1980, 5, 4))]
        values: dict[str, Any] = {
            "territory_id": territory.id,
            "reference": new_reference(),
            "status": status,
            "source": Source.QUESTIONNAIRE,
            "phone": "+33612345678",
            "postal_code": "59280",
            "commune_insee": "59017",
            "reason": Reason.GP_LEFT,
            "consent_at": created,
            "created_at": created,
        }
        request = Request(**values)
        # (first name, last name, birth date) or with ALD as a fourth item.
        request.persons = [
            Person(
                territory_id=territory.id, first_name=person[0], last_name=person[1],
                birth_date=person[2], ald=person[3] if len(person) > 3 else False, position=i,
            )
            for i, person in enumerate(persons)
        ]  # fmt: skip
        request.css_ame = kwargs.get("css_ame", False)
        store_household(request)  # as the intake does; a test may still force a value
        for name, value in kwargs.items():
            setattr(request, name, value)
        session.add(request)
        session.commit()
        return request

    return _make


class AuthActions:
    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, user: User, password: str = PASSWORD) -> Any:
        return self._client.post("/connexion", data={"email": user.email, "password": password})

    def logout(self) -> Any:
        return self._client.post("/deconnexion")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def twilio_server() -> Iterator[Any]:
    """A local server speaking the Twilio Messages API (tests/fakes/twilio_server.py)."""
    from tests.fakes.twilio_server import TwilioServer

    with TwilioServer() as fake:
        yield fake
