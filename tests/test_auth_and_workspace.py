"""Staff log in, are locked out after repeated failures, and see only their own CPTS."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Role, Status, Territory, User
from tests.conftest import AuthActions


def test_home_page_lists_the_hosted_cpts(
    client: FlaskClient, make_territory: Callable[..., Territory]
) -> None:
    make_territory(name="CPTS Lys-Armentières")
    page = client.get("/").get_data(as_text=True)
    assert "Vous n'avez pas de médecin traitant ?" in page
    assert "CPTS Lys-Armentières" in page
    assert "3 communes" in page


def test_workspace_needs_a_login(client: FlaskClient) -> None:
    response = client.get("/espace/")
    assert response.status_code == 302
    assert "/connexion" in response.headers["Location"]


def test_coordinator_logs_in_and_sees_the_figures_of_their_cpts(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., object],
) -> None:
    mine = make_territory(name="CPTS Mine")
    other = make_territory(name="CPTS Other")
    make_request(mine, Status.ELIGIBLE)
    make_request(mine, Status.ORIENTED)
    for _ in range(5):
        make_request(other, Status.ELIGIBLE)
    user = make_user(mine)
    response = auth.login(user)
    assert response.status_code == 302 and response.headers["Location"] == "/espace/"
    page = client.get("/espace/").get_data(as_text=True)
    assert "CPTS Mine" in page and "CPTS Other" not in page
    assert "<strong>1</strong> ouvertes" in page  # not 6: the other CPTS's requests are unseen


def test_wrong_password_is_refused_with_a_clear_message_and_audited(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    user = make_user(make_territory())
    response = auth.login(user, password="wrong-password-123")
    assert response.status_code == 401
    assert "Adresse e-mail ou mot de passe incorrect." in response.get_data(as_text=True)
    assert client.get("/espace/").status_code == 302
    actions = session.scalars(select(AuditEntry.action)).all()
    assert actions == ["login.failed"]


def test_five_failures_lock_the_account_from_that_address_even_for_the_right_password(
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    user = make_user(make_territory())
    for _ in range(5):
        auth.login(user, password="wrong-password-123")
    response = auth.login(user)
    assert response.status_code == 401
    # The answer of any refusal: it does not tell a locked account from a wrong password.
    assert "attend 15 minutes" in response.get_data(as_text=True)
    assert "login.locked" in session.scalars(select(AuditEntry.action)).all()


def test_successful_login_is_audited_and_logout_ends_the_session(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    user = make_user(make_territory())
    auth.login(user)
    assert client.get("/espace/").status_code == 200
    auth.logout()
    assert client.get("/espace/").status_code == 302
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "login.success"))
    assert entry is not None and entry.user_id == user.id


def test_login_never_redirects_to_another_site(
    client: FlaskClient,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    user = make_user(make_territory())
    response = client.post(
        "/connexion?next=//evil.example/x",
        data={"email": user.email, "password": "correct-horse-42-battery"},
    )
    assert response.headers["Location"] == "/espace/"


def test_a_referrer_cannot_open_the_coordinator_dashboard(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(make_territory(), role=Role.REFERRER))
    assert client.get("/espace/").status_code == 403


def test_every_page_carries_the_security_headers(client: FlaskClient) -> None:
    for path in ("/", "/connexion", "/nope"):
        headers = client.get(path).headers
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "same-origin"


def test_health_check_answers(client: FlaskClient) -> None:
    assert client.get("/sante").get_json() == {"status": "ok"}


def test_each_role_lands_on_its_own_start_page(
    auth: AuthActions, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> None:
    territory = make_territory()
    expected = {
        Role.COORDINATOR: "/espace/",
        Role.REFERRER: "/orienter",
        Role.ADMIN: "/admin/",
    }
    for role, path in expected.items():
        user = make_user(None if role is Role.ADMIN else territory, role=role)
        assert auth.login(user).headers["Location"] == path
        auth.logout()
