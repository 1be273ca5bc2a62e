"""A coordinator types a call into the phone form after the session has expired: logging in
again brings the form back filled in, and sending it records the request once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Request, Source, Territory, User
from orientation import create_app
from orientation.config import Settings
from tests.browser.conftest import serving
from tests.conftest import PASSWORD


def _log_in(page: Any, user: User) -> None:
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def test_a_call_typed_after_the_session_expired_is_sent_after_logging_in_again(
    settings: Settings, desktop_page: Any, session: Session,
    make_territory: Callable[..., Territory], make_user: Callable[..., User],
) -> None:  # fmt: skip
    coordinator = make_user(make_territory("CPTS Lys", ["59017"]))
    # The app as it runs, CSRF check included: that check is what an expired session fails.
    app = create_app(settings.with_overrides(extra={"WTF_CSRF_ENABLED": True}))
    page = desktop_page
    with serving(app) as url:
        page.goto(url + "/connexion")
        _log_in(page, coordinator)
        page.goto(url + "/espace/saisie")
        page.locator("#persons-0-first_name").fill("Odette")
        page.locator("#persons-0-last_name").fill("Lemaire")
        page.locator("#persons-0-birth_date").fill("03/02/1948")
        page.get_by_label("Téléphone portable ou fixe").fill("06 12 34 56 78")
        page.get_by_label("Numéro et rue").fill("12 rue des Lilas")
        page.get_by_label("Code postal").fill("59280")
        page.get_by_label("Commune").fill("Armentières")
        page.get_by_label("Son médecin est parti ou à la retraite").check()
        page.get_by_label("La personne a entendu cette information").check()
        page.context.clear_cookies()  # the session is over while the call goes on
        page.get_by_role("button", name="Enregistrer la demande").click()

        assert "Votre session a expiré" in page.get_by_role("alert").inner_text()
        assert session.scalars(select(Request)).all() == []
        _log_in(page, coordinator)
        assert "Vous êtes reconnecté" in page.get_by_role("alert").inner_text()
        assert page.locator("#persons-0-last_name").input_value() == "Lemaire"
        assert page.get_by_label("Commune").input_value() == "Armentières"
        assert page.get_by_label("La personne a entendu cette information").is_checked()
        page.get_by_role("button", name="Enregistrer la demande").click()
        assert page.get_by_role("heading", level=1).inner_text() == "Demande enregistrée"
    app.extensions["orientation.engine"].dispose()
    request = session.scalars(select(Request)).one()
    assert request.source is Source.PHONE and request.persons[0].last_name == "Lemaire"
