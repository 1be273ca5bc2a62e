"""Staff sessions end on the server (logout, new password, deactivation), logins lock per
account and address without telling which e-mails exist, and the audit keeps no password."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Role, Territory, User, utcnow
from models.user import LoginFailure
from orientation.services import accounts, staff
from orientation.services.accounts import NOT_AN_EMAIL, LoginAttempt, LoginRefused
from tests.conftest import PASSWORD, AuthActions
from tests.test_intake import answers

COOKIE = "orientation_session"
NEW_PASSWORD = "a-long-pass-phrase-77"
HERE, ELSEWHERE = "198.51.100.7", "203.0.113.9"


def _cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def _replayed(client: FlaskClient, value: str) -> FlaskClient:
    """Another browser holding a copy of this session cookie."""
    thief = client.application.test_client()
    thief.set_cookie(COOKIE, value)
    return thief


def _login(client: FlaskClient, email: str, password: str, ip: str = HERE) -> tuple[int, str]:
    response = client.post(
        "/connexion", data={"email": email, "password": password},
        environ_base={"REMOTE_ADDR": ip},
    )  # fmt: skip
    return response.status_code, response.get_data(as_text=True)


# --- 1. sessions the server can end ------------------------------------------------------


def test_a_cookie_replayed_after_logout_is_logged_out_like_the_users_other_devices(
    client: FlaskClient, auth: AuthActions, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    coordinator = make_user(make_territory())
    auth.login(coordinator)
    assert client.get("/espace/demandes").status_code == 200
    copied = _cookie(client)
    other_device = client.application.test_client()
    AuthActions(other_device).login(coordinator)
    assert other_device.get("/espace/demandes").status_code == 200

    logged_out = auth.logout()
    assert "vos autres appareils" in client.get(logged_out.headers["Location"]).get_data(
        as_text=True
    )
    replay = _replayed(client, copied).get("/espace/demandes")
    assert replay.status_code == 302 and replay.headers["Location"].startswith("/connexion")
    assert other_device.get("/espace/demandes").status_code == 302
    auth.login(coordinator)  # a new login opens a new session
    assert client.get("/espace/demandes").status_code == 200


def test_a_password_reset_by_an_admin_ends_the_users_sessions(
    client: FlaskClient, auth: AuthActions, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    territory = make_territory()
    coordinator = make_user(territory)
    theirs = client.application.test_client()
    AuthActions(theirs).login(coordinator)
    copied = _cookie(theirs)
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    reset = client.post(
        f"/admin/equipe/{coordinator.id}/mot-de-passe", data={"password": NEW_PASSWORD}
    )
    assert reset.status_code == 302
    assert theirs.get("/espace/demandes").status_code == 302
    assert _replayed(theirs, copied).get("/espace/demandes").status_code == 302
    assert client.get("/admin/").status_code == 200  # the admin's own session goes on
    assert _login(theirs, coordinator.email, NEW_PASSWORD)[0] == 302


def test_a_new_password_ends_the_users_sessions(
    client: FlaskClient, auth: AuthActions, session: Session,
    make_territory: Callable[..., Territory], make_user: Callable[..., User],
) -> None:  # fmt: skip
    coordinator = make_user(make_territory())
    auth.login(coordinator)
    accounts.set_password(coordinator, NEW_PASSWORD)  # however the user changes it
    session.commit()
    assert client.get("/espace/demandes").status_code == 302


def test_a_deactivation_ends_sessions_that_a_reactivation_does_not_bring_back(
    client: FlaskClient, auth: AuthActions, session: Session,
    make_territory: Callable[..., Territory], make_user: Callable[..., User],
) -> None:  # fmt: skip
    territory = make_territory()
    coordinator = make_user(territory)
    theirs = client.application.test_client()
    AuthActions(theirs).login(coordinator)
    admin = make_user(territory, Role.CPTS_ADMIN)
    staff.set_active(session, admin, coordinator, False)
    staff.set_active(session, admin, coordinator, True)
    session.commit()
    assert theirs.get("/espace/demandes").status_code == 302


def test_a_form_posted_from_a_session_ended_elsewhere_comes_back_through_the_login(
    client: FlaskClient, auth: AuthActions, session: Session,
    make_territory: Callable[..., Territory], make_user: Callable[..., User],
) -> None:  # fmt: skip
    coordinator = make_user(make_territory("CPTS Lys", ["59017"]))
    auth.login(coordinator)
    accounts.end_sessions(coordinator)  # logged out on another device
    session.commit()
    refused = client.post(
        "/espace/saisie", data=answers(nonce="call-1"), headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert refused.status_code == 401
    page = refused.get_data(as_text=True)
    assert "Votre session a expiré" in page
    assert 'name="carried-persons-0-last_name" value="Martin"' in page


# --- 2. lockout per account and address, one answer for every refusal --------------------


def test_failures_from_one_address_do_not_lock_the_owner_out_from_another(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    coordinator = make_user(make_territory())
    for _ in range(8):
        assert _login(client, coordinator.email, "wrong-password-1", ELSEWHERE)[0] == 401
    assert _login(client, coordinator.email, PASSWORD, ELSEWHERE)[0] == 401  # locked there
    assert _login(client, coordinator.email, PASSWORD, HERE)[0] == 302  # not here
    actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("login.failed") == 5 and actions.count("login.locked") == 4
    assert actions[-1] == "login.success"


def test_an_unknown_e_mail_gets_the_same_answers_as_a_known_one(
    client: FlaskClient, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> None:
    known = make_user(make_territory()).email
    unknown = "personne@example.org"
    for _ in range(7):  # before the lock, at it and past it
        status, page = _login(client, known, "wrong-password-1")
        other_status, other_page = _login(client, unknown, "wrong-password-1")
        assert status == other_status == 401
        assert page.replace(known, "@") == other_page.replace(unknown, "@")
    assert "Trop d'essais" not in page


def test_failures_older_than_the_lock_window_are_forgotten(
    session: Session, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> None:
    coordinator = make_user(make_territory())
    wrong = LoginAttempt(email=coordinator.email, password="wrong-password-1", ip=HERE)
    right = LoginAttempt(email=coordinator.email, password=PASSWORD, ip=HERE)
    start = utcnow()
    for minute in range(4):
        with pytest.raises(LoginRefused):
            accounts.authenticate(session, wrong, start + timedelta(minutes=minute))
    later = start + accounts.LOCKOUT + timedelta(minutes=1)
    with pytest.raises(LoginRefused):  # the fifth, but the first four are too old
        accounts.authenticate(session, wrong, later)
    assert accounts.authenticate(session, right, later) == coordinator
    for _ in range(5):
        with pytest.raises(LoginRefused):
            accounts.authenticate(session, wrong, later)
    with pytest.raises(LoginRefused):  # locked...
        accounts.authenticate(session, right, later + timedelta(minutes=14))
    # ...until the window is over.
    assert accounts.authenticate(session, right, later + accounts.LOCKOUT) == coordinator
    assert session.scalars(select(LoginFailure)).all() == []


def test_a_password_reset_lifts_the_lockouts_of_every_address(
    session: Session, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> None:
    territory = make_territory()
    coordinator = make_user(territory)
    now = utcnow()
    for ip in (HERE, ELSEWHERE):
        for _ in range(5):
            with pytest.raises(LoginRefused):
                accounts.authenticate(session, LoginAttempt(coordinator.email, "wrong-1a", ip), now)
    staff.reset_password(session, make_user(territory, Role.CPTS_ADMIN), coordinator, NEW_PASSWORD)
    assert session.scalars(select(LoginFailure)).all() == []
    attempt = LoginAttempt(coordinator.email, NEW_PASSWORD, HERE)
    assert accounts.authenticate(session, attempt, now) == coordinator


# --- 3. the audit keeps no password typed in the e-mail field ------------------------------


@pytest.mark.parametrize(
    ("typed", "label"),
    [
        ("MonMotDePasse-2026!", NOT_AN_EMAIL),
        ("hunter2 hunter2@", NOT_AN_EMAIL),
        ("Personne@Example.org", "personne@example.org"),
    ],
)
def test_a_failed_login_keeps_what_was_typed_only_when_it_is_an_e_mail_address(
    client: FlaskClient, session: Session, typed: str, label: str
) -> None:
    assert _login(client, typed, "whatever-it-was-1")[0] == 401
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "login.failed"))
    assert entry is not None and entry.actor_label == label
