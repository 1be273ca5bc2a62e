"""A visitor on a phone opens the home page; a coordinator logs in from it."""

from __future__ import annotations

from flask.testing import FlaskCliRunner
from playwright.sync_api import expect


def test_visitor_sees_the_service_and_the_cpts_on_a_phone(
    runner: FlaskCliRunner,
    live_server: str,
    phone_page,  # type: ignore[no-untyped-def]
) -> None:
    runner.invoke(args=["demo"])
    phone_page.goto(live_server + "/")
    assert phone_page.title() == "Trouver un médecin traitant · Orientation"
    heading = phone_page.get_by_role("heading", level=1)
    assert heading.inner_text() == "Vous n'avez pas de médecin traitant ?"
    expect(phone_page.get_by_role("heading", name="CPTS Lys-Armentières (démo)")).to_be_visible()
    # Nothing wider than the phone: no horizontal scrolling.
    assert phone_page.evaluate("document.documentElement.scrollWidth") <= 360


def test_coordinator_logs_in_from_the_home_page(
    runner: FlaskCliRunner,
    live_server: str,
    desktop_page,  # type: ignore[no-untyped-def]
) -> None:
    output = runner.invoke(args=["demo"]).output
    line = next(x for x in output.splitlines() if "coordination@lys-armentieres" in x)
    page = desktop_page
    page.goto(live_server + "/")
    page.get_by_role("link", name="Espace des coordinateurs et des professionnels").click()
    page.get_by_label("Adresse e-mail").fill("coordination@lys-armentieres.demo")
    page.get_by_label("Mot de passe").fill("wrong-password-1")
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_text("Adresse e-mail ou mot de passe incorrect.")).to_be_visible()
    page.get_by_label("Mot de passe").fill(line.split()[2])
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/espace/")
    assert page.get_by_role("heading", level=1).inner_text() == "CPTS Lys-Armentières (démo)"
    expect(page.get_by_role("table", name="Demandes par statut")).to_be_visible()
