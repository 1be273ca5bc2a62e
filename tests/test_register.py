"""The register of processing and the patients' notice, generated from the CPTS settings."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask, render_template
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from models import Role, Territory, User
from orientation.services.register import build_register
from tests.conftest import AuthActions


def _configured(make_territory: Callable[..., Territory], session: Session) -> Territory:
    territory = make_territory(
        name="CPTS Registre", dpo_contact="Maître Dupont, dpo@registre.example"
    )
    territory.postal_address = "3 place du Général de Gaulle, 59280 Armentières"
    territory.retention_closed_months = 18
    territory.retention_message_body_months = 2
    session.commit()
    return territory


def test_the_register_shows_controller_dpo_purposes_recipients_retention_and_security(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = _configured(make_territory, session)
    auth.login(make_user(territory))
    response = client.get("/espace/registre")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for expected in (
        "Registre des activités de traitement",
        "CPTS Registre",
        "3 place du Général de Gaulle",
        "Maître Dupont, dpo@registre.example",
        "Finalités",
        "Catégories de personnes concernées",
        "Destinataires",
        "18 mois après la clôture",
        "2 mois après l&#39;envoi",
        "argon2",
    ):
        assert expected in page, expected
    assert "<script" not in page


def test_changing_a_setting_changes_the_register(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = _configured(make_territory, session)
    auth.login(make_user(territory))
    territory.retention_closed_months = 6
    territory.dpo_contact = ""
    session.commit()
    page = client.get("/espace/registre").get_data(as_text=True)
    assert "6 mois après la clôture" in page and "18 mois" not in page
    assert "délégué à la protection des données à désigner" in page


def test_the_register_prints_without_the_site_navigation(app: Flask) -> None:
    css = (app.static_folder or "") + "/css/app.css"
    with open(css, encoding="utf-8") as handle:
        stylesheet = handle.read()
    print_rules = stylesheet.split("@media print", 1)[1]
    assert ".site-header" in print_rules and "display: none" in print_rules


def test_the_patients_notice_comes_from_the_same_settings_as_the_register(
    app: Flask, session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = _configured(make_territory, session)
    with app.test_request_context("/"):
        notice = render_template("rgpd/_notice.html", territory=territory)
    register = build_register(territory)
    assert "CPTS Registre" in notice
    assert "Maître Dupont, dpo@registre.example" in notice
    for rule in register.retention[:3]:
        assert rule.duration.replace("'", "&#39;") in notice
    assert "CNIL" in notice


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.CPTS_ADMIN])
def test_each_cpts_sees_its_own_register(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    role: Role,
) -> None:
    _configured(make_territory, session)
    other = make_territory(name="CPTS Voisine")
    auth.login(make_user(other, role))
    page = client.get("/espace/registre").get_data(as_text=True)
    assert "CPTS Voisine" in page and "CPTS Registre" not in page


def test_referrers_do_not_see_the_register(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(make_territory(), Role.REFERRER))
    assert client.get("/espace/registre").status_code == 403
