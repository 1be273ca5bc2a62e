"""Staff management: the instance admin manages CPTS admins; a CPTS admin manages their team."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Role, Territory, User
from tests.conftest import AuthActions

GOOD_PASSWORD = "a-long-pass-phrase-77"


def _new_staff(
    client: FlaskClient, territory: Territory, role: Role, password: str = GOOD_PASSWORD
) -> tuple[int, str]:
    response = client.post(
        "/admin/equipe/nouveau",
        data={
            "full_name": "Nouvelle Coordinatrice",
            "email": "Nouvelle@Example.org",
            "role": role.value,
            "territory_id": territory.id,
            "password": password,
        },
    )
    return response.status_code, response.get_data(as_text=True)


def test_a_cpts_admin_creates_a_coordinator_who_can_then_log_in(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    status, _ = _new_staff(client, territory, Role.COORDINATOR)
    assert status == 302
    created = session.scalar(select(User).where(User.email == "nouvelle@example.org"))
    assert created is not None and created.role is Role.COORDINATOR
    assert created.territory_id == territory.id
    assert "Nouvelle Coordinatrice" in client.get("/admin/").get_data(as_text=True)
    audited = session.scalars(select(AuditEntry.action)).all()
    assert "staff.create" in audited
    auth.logout()
    assert auth.login(created, password=GOOD_PASSWORD).headers["Location"] == "/espace/"


def test_a_weak_password_is_refused_on_its_field_and_the_rest_is_kept(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    status, page = _new_staff(client, territory, Role.COORDINATOR, password="short1")
    assert status == 200
    assert "Mot de passe trop faible : au moins 12 caractères" in page
    assert 'value="Nouvelle Coordinatrice"' in page
    assert session.scalar(select(User).where(User.email == "nouvelle@example.org")) is None


def test_an_e_mail_already_used_is_refused_clearly(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    make_user(territory, email="nouvelle@example.org")
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    status, page = _new_staff(client, territory, Role.COORDINATOR)
    assert status == 200 and "Un compte utilise déjà cette adresse e-mail." in page


def test_a_cpts_admin_cannot_create_an_admin_nor_staff_of_another_cpts(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    mine, other = make_territory(), make_territory()
    auth.login(make_user(mine, Role.CPTS_ADMIN))
    status, page = _new_staff(client, mine, Role.CPTS_ADMIN)
    assert status == 200 and "N&#39;est pas un choix valide." in page
    status, page = _new_staff(client, other, Role.COORDINATOR)
    assert status == 200 and "N&#39;est pas un choix valide." in page  # not among the choices
    assert session.scalar(select(User).where(User.email == "nouvelle@example.org")) is None


def test_the_instance_admin_creates_the_admin_of_a_cpts(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    auth.login(make_user(None, Role.ADMIN))
    status, _ = _new_staff(client, territory, Role.CPTS_ADMIN)
    assert status == 302
    created = session.scalar(select(User).where(User.email == "nouvelle@example.org"))
    assert created is not None and created.role is Role.CPTS_ADMIN


def test_a_deactivated_coordinator_can_no_longer_log_in_nor_use_an_open_session(
    app: object,
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    coordinator = make_user(territory)
    coordinator_client = client.application.test_client()
    AuthActions(coordinator_client).login(coordinator)
    assert coordinator_client.get("/espace/").status_code == 200
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    assert client.post(f"/admin/equipe/{coordinator.id}/desactiver").status_code == 302
    assert coordinator_client.get("/espace/").status_code == 302  # sent back to the login
    response = AuthActions(client.application.test_client()).login(coordinator)
    assert response.status_code == 401
    assert client.post(f"/admin/equipe/{coordinator.id}/reactiver").status_code == 302
    session.refresh(coordinator)
    assert coordinator.active


def test_a_password_reset_sets_the_new_password_and_lifts_a_lockout(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    coordinator = make_user(territory)
    stranger = AuthActions(client.application.test_client())
    for _ in range(5):
        stranger.login(coordinator, password="wrong-password-1")
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    weak = client.post(f"/admin/equipe/{coordinator.id}/mot-de-passe", data={"password": "abc"})
    assert "Mot de passe trop faible" in weak.get_data(as_text=True)
    response = client.post(
        f"/admin/equipe/{coordinator.id}/mot-de-passe", data={"password": GOOD_PASSWORD}
    )
    assert response.status_code == 302
    assert stranger.login(coordinator, password=GOOD_PASSWORD).status_code == 302


def test_a_cpts_admin_cannot_touch_an_account_of_another_cpts(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    mine, other = make_territory(), make_territory()
    foreign = make_user(other)
    auth.login(make_user(mine, Role.CPTS_ADMIN))
    assert client.post(f"/admin/equipe/{foreign.id}/desactiver").status_code == 404
    assert client.get(f"/admin/equipe/{foreign.id}/mot-de-passe").status_code == 404
    assert client.get(f"/admin/cpts/{other.id}/parametres").status_code == 404
    session.refresh(foreign)
    assert foreign.active


def test_a_cpts_admin_edits_contacts_dpo_distances_follow_up_delay_and_retention(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    form = {
        "contact_phone": "03 20 11 22 33",
        "contact_email": "coordination@cpts.example.org",
        "postal_address": "1 rue de la Gare, 59280 Armentières",
        "dpo_contact": "Mme DPO, dpo@cpts.example.org",
        "max_distance_km": "12",
        "availability_refresh_months": "6",
        "follow_up_days": "21",
        "retention_closed_months": "18",
        "retention_out_of_territory_months": "2",
        "retention_message_body_months": "1",
    }
    url = f"/admin/cpts/{territory.id}/parametres"
    assert client.post(url, data=form).status_code == 302
    session.refresh(territory)
    assert territory.dpo_contact == "Mme DPO, dpo@cpts.example.org"
    assert (territory.max_distance_km, territory.retention_closed_months) == (12, 18)
    assert territory.follow_up_days == 21
    bad = client.post(
        url,
        data={**form, "retention_closed_months": "0", "contact_email": "x@", "follow_up_days": "0"},
    )
    page = bad.get_data(as_text=True)
    assert "Indiquez un nombre entre 1 et 60." in page
    assert "Indiquez un nombre entre 1 et 365." in page
    assert "Cette adresse e-mail n&#39;est pas valide." in page
    assert "Mme DPO" in page  # what was typed is kept
    session.refresh(territory)
    assert territory.retention_closed_months == 18
    assert territory.follow_up_days == 21


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.REFERRER])
def test_coordinators_and_referrers_cannot_manage_staff_or_settings(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    role: Role,
) -> None:
    territory = make_territory()
    colleague = make_user(territory)
    auth.login(make_user(territory, role))
    assert client.get("/admin/").status_code == 403
    assert client.post("/admin/equipe/nouveau", data={}).status_code == 403
    assert client.post(f"/admin/equipe/{colleague.id}/desactiver").status_code == 403
    assert client.get(f"/admin/cpts/{territory.id}/parametres").status_code == 403


def test_the_instance_admin_adds_a_cpts_and_unknown_communes_are_named(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(None, Role.ADMIN))
    bad = client.post(
        "/admin/cpts/nouvelle", data={"name": "CPTS Neuve", "communes": "59017 99999"}
    )
    page = bad.get_data(as_text=True)
    assert "Codes INSEE inconnus : 99999." in page and 'value="CPTS Neuve"' in page
    assert session.scalar(select(Territory).where(Territory.name == "CPTS Neuve")) is None
    good = client.post(
        "/admin/cpts/nouvelle", data={"name": "CPTS Neuve", "communes": "59017, 59431"}
    )
    assert good.status_code == 302
    created = session.scalar(select(Territory).where(Territory.name == "CPTS Neuve"))
    assert created is not None and created.insee_codes == ["59017", "59431"]
    again = client.post("/admin/cpts/nouvelle", data={"name": "CPTS Neuve", "communes": "59017"})
    assert "Une CPTS porte déjà ce nom." in again.get_data(as_text=True)


def test_a_cpts_named_as_another_is_refused_and_shared_communes_are_pointed_out(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    lys = make_territory("CPTS Lys-Armentières (démo)", ["59017", "59431"])
    auth.login(make_user(None, Role.ADMIN))
    # The same name in other capitals and without its accents is the same name to a reader.
    twin = client.post(
        "/admin/cpts/nouvelle", data={"name": "cpts lys-armentieres (DEMO)", "communes": "59350"}
    )
    assert "Une CPTS porte déjà ce nom." in twin.get_data(as_text=True)
    overlapping = client.post(
        "/admin/cpts/nouvelle",
        data={"name": "CPTS Test Nord", "communes": "59017 59350"},
        follow_redirects=True,
    )
    page = overlapping.get_data(as_text=True)
    assert f"Communes aussi dans le territoire de {lys.name} : Armentières." in page
    created = session.scalar(select(Territory).where(Territory.name == "CPTS Test Nord"))
    assert created is not None and created.insee_codes == ["59017", "59350"]


def test_a_cpts_admin_cannot_add_a_cpts(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(make_territory(), Role.CPTS_ADMIN))
    assert (
        client.post("/admin/cpts/nouvelle", data={"name": "X", "communes": "59017"}).status_code
        == 403
    )
