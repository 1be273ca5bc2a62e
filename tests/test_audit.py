"""The audit trail: append-only in the database, and an admin view with filters per CPTS."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from models import AuditEntry, Role, Territory, User, utcnow
from orientation.services import audit
from tests.conftest import AuthActions


def _entry(session: Session, action: str, territory: Territory | None, **kwargs: object) -> int:
    entry = audit.record(
        session, action, territory_id=territory.id if territory else None, **kwargs
    )
    session.commit()
    return entry.id


def test_the_database_refuses_to_update_an_audit_entry(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    entry_id = _entry(session, "request.read", make_territory())
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(update(AuditEntry).where(AuditEntry.id == entry_id).values(action="x"))
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("UPDATE audit_entries SET ip = '1.2.3.4'"))
    session.rollback()
    assert session.get(AuditEntry, entry_id).action == "request.read"  # type: ignore[union-attr]


def test_the_database_refuses_to_delete_an_audit_entry(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    entry_id = _entry(session, "request.read", make_territory())
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(delete(AuditEntry).where(AuditEntry.id == entry_id))
    session.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        session.execute(text("DELETE FROM audit_entries"))
    session.rollback()
    assert session.get(AuditEntry, entry_id) is not None


def test_a_cpts_admin_sees_only_the_audit_entries_of_their_cpts(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    mine, other = make_territory(), make_territory()
    _entry(session, "request.read", mine, object_type="request", object_id="111")
    _entry(session, "request.read", other, object_type="request", object_id="999")
    auth.login(make_user(mine, Role.CPTS_ADMIN))
    page = client.get("/admin/audit").get_data(as_text=True)
    assert "n° 111" in page
    assert "n° 999" not in page


def test_the_instance_admin_sees_every_cpts_and_filters_by_action_user_object_and_period(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    first, second = make_territory(), make_territory()
    coordinator = make_user(first)
    _entry(session, "request.read", first, user_id=coordinator.id, object_type="request",
           object_id="111")  # fmt: skip
    _entry(session, "staff.create", second, object_type="user", object_id="222")
    old = audit.record(session, "request.read", territory_id=second.id, object_id="333")
    old.at = utcnow() - timedelta(days=40)
    session.commit()
    auth.login(make_user(None, Role.ADMIN))

    everything = client.get("/admin/audit").get_data(as_text=True)
    assert all(f"n° {n}" in everything for n in ("111", "222", "333"))
    by_action = client.get("/admin/audit?action=staff").get_data(as_text=True)
    assert "n° 222" in by_action and "n° 111" not in by_action
    by_user = client.get(f"/admin/audit?user_id={coordinator.id}").get_data(as_text=True)
    assert "n° 111" in by_user and "n° 222" not in by_user
    by_object = client.get("/admin/audit?object_type=user&object_id=222").get_data(as_text=True)
    assert "n° 222" in by_object and "n° 111" not in by_object
    since = (utcnow() - timedelta(days=7)).date().isoformat()
    recent = client.get(f"/admin/audit?since={since}").get_data(as_text=True)
    assert "n° 111" in recent and "n° 333" not in recent
    until = (utcnow() - timedelta(days=30)).date().isoformat()
    older = client.get(f"/admin/audit?until={until}").get_data(as_text=True)
    assert "n° 333" in older and "n° 111" not in older


def test_a_malformed_filter_shows_an_error_not_a_crash(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(make_territory(), Role.CPTS_ADMIN))
    response = client.get("/admin/audit?since=not-a-date&user_id=abc")
    assert response.status_code == 200
    assert "Aucune entrée" in response.get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.REFERRER])
def test_coordinators_and_referrers_cannot_open_the_audit_view(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    role: Role,
) -> None:
    auth.login(make_user(make_territory(), role))
    assert client.get("/admin/audit").status_code == 403


def test_logins_are_in_the_audit_view_with_where_they_came_from(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    coordinator = make_user(territory)
    auth.login(coordinator, password="wrong-password-1")
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    page = client.get("/admin/audit?action=login").get_data(as_text=True)
    assert "login.failed" in page and "login.success" in page
    assert "127.0.0.1" in page
