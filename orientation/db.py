"""One SQLAlchemy session per web request, closed (and rolled back if uncommitted) at teardown."""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from models.engine import make_engine, make_sessionmaker
from models.tenancy import scope_to_territory


def init_app(app: Flask, database_url: str) -> Engine:
    engine = make_engine(database_url)
    app.extensions["orientation.engine"] = engine
    app.extensions["orientation.sessionmaker"] = make_sessionmaker(engine)
    app.teardown_appcontext(_close_session)
    return engine


def engine() -> Engine:
    result: Engine = current_app.extensions["orientation.engine"]
    return result


def session_factory() -> sessionmaker[Session]:
    result: sessionmaker[Session] = current_app.extensions["orientation.sessionmaker"]
    return result


def db_session() -> Session:
    """The session of the current request (unscoped: public pages and login)."""
    if "db_session" not in g:
        g.db_session = session_factory()()
    session: Session = g.db_session
    return session


def territory_session(territory_id: int) -> Session:
    """The current request's session, restricted to one territory (see models.tenancy)."""
    return scope_to_territory(db_session(), territory_id)


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.close()
