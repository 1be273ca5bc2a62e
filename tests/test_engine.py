"""The engine: a PostgreSQL connection cut while it sat in the pool is replaced, unseen."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from models import engine as engine_module
from models.engine import IDLE_PING_SECONDS, make_engine


def test_a_connection_cut_while_idle_is_replaced_before_anyone_uses_it(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = make_engine(postgres_url)
    admin = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with engine.connect() as connection:  # used a moment ago: the same, without a ping
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() == first
        with admin.connect() as connection:  # a restart, a firewall's idle timeout...
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        now = engine_module.time.monotonic()
        monkeypatch.setattr(engine_module.time, "monotonic", lambda: now + IDLE_PING_SECONDS + 1)
        with engine.connect() as connection:
            second = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert second != first
    finally:
        engine.dispose()
        admin.dispose()
