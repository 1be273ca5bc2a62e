"""A person scans the flyer on a phone, makes mistakes, corrects them and gets a reference.

Every public page of the journey is checked with axe-core (no serious or critical violation)
and weighed (page and its assets under 100 KB).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskCliRunner

from models import Territory

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = os.environ.get("ORIENTATION_SCREENSHOT_DIR", "")
PHONE = {"viewport": {"width": 360, "height": 740}, "locale": "fr-FR", "device_scale_factor": 2}


@pytest.fixture
def axe_page(browser: Any) -> Any:
    """A phone-sized page where axe-core can be injected (CSP bypassed for the injection only)."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` in the repository root")
    context = browser.new_context(bypass_csp=True, **PHONE)
    page = context.new_page()
    yield page
    context.close()


def serious_violations(page: Any, url: str) -> list[str]:
    page.goto(url)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']}: {v['help']} ({len(v['nodes'])})"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


class Weigher:
    """Sums the bytes of every response a page load fetches."""

    def __init__(self, page: Any) -> None:
        self.total = 0
        page.on("response", self._count)

    def _count(self, response: Any) -> None:
        try:
            self.total += len(response.body())
        except Exception:  # noqa: BLE001, S110 - a redirect has no body to weigh
            pass

    def weigh(self, action: Callable[[], Any]) -> int:
        self.total = 0
        action()
        return self.total


def shoot(page: Any, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def test_a_person_fills_the_questionnaire_on_a_phone_from_the_qr_code(
    runner: FlaskCliRunner,
    live_server: str,
    phone_page: Any,
    axe_page: Any,
    make_territory: Callable[..., Territory],
) -> None:
    runner.invoke(args=["demo"])
    page = phone_page
    weigher = Weigher(page)
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    qr_url = f"{live_server}/cpts/lys-armentieres/demande?source=pharmacie"
    weights = {"questionnaire": weigher.weigh(lambda: page.goto(qr_url))}
    assert page.get_by_role("heading", level=1).inner_text() == "Trouver un médecin traitant"
    shoot(page, "intake-questionnaire")

    # First round: a future birth date, a bad phone, a commune not of the postal code, no consent.
    page.locator("#persons-0-first_name").fill("Zoé")
    page.locator("#persons-0-last_name").fill("D'Hondt-Lefèvre")
    page.locator("#persons-0-birth_date").fill("12/05/2090")
    page.get_by_label("Téléphone portable ou fixe").fill("06 12 34")
    page.get_by_label("Numéro et rue").fill("3 rue de Lille")
    page.get_by_label("Code postal").fill("59280")
    page.get_by_label("Commune").fill("Lille")
    page.get_by_label("Mon médecin est parti ou à la retraite").check()
    weights["errors"] = weigher.weigh(
        lambda: page.get_by_role("button", name="Envoyer ma demande").click()
    )
    summary = page.get_by_role("alert")
    assert "4 points à corriger" in summary.inner_text()
    assert page.locator("#persons-0-first_name").input_value() == "Zoé"
    birth_error = page.locator("#persons-0-birth_date-error").inner_text()
    assert birth_error == "La date de naissance ne peut pas être dans le futur."
    shoot(page, "intake-errors")

    # The summary's links lead to the fields; the commune is now a select of the postal code.
    summary.get_by_role("link", name="Commune").click()
    assert page.evaluate("document.activeElement.id") == "commune"
    page.get_by_label("Commune").select_option(label="Armentières")
    page.locator("#persons-0-birth_date").fill("12/05/1950")
    page.get_by_label("Téléphone portable ou fixe").fill("06 12 34 56 78")
    page.get_by_label("J'accepte que la CPTS traite ces informations").check()
    weights["confirmation"] = weigher.weigh(
        lambda: page.get_by_role("button", name="Envoyer ma demande").click()
    )
    assert page.get_by_role("heading", level=1).inner_text() == "Votre demande est enregistrée"
    reference = page.locator(".reference").inner_text()
    assert len(reference) == 9 and reference[4] == "-"
    shoot(page, "intake-confirmation")
    confirmation_url = page.url

    page.get_by_role("link", name="/suivi/").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Ma demande de médecin traitant"
    assert "Zoé D'Hondt-Lefèvre, 12/05/1950" in page.content()
    weights["follow_up"] = weigher.weigh(lambda: page.reload())
    follow_up_url = page.url

    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    blocked = [e for e in console_errors if "Content Security Policy" in e or "Refused" in e]
    assert blocked == []  # no inline script or style anywhere
    for name, size in weights.items():
        assert size < 100_000, f"{name} weighs {size} bytes"

    # Out of territory in a hosted CPTS: the page points there (axe checks it below).
    page.goto(qr_url)
    page.locator("#persons-0-first_name").fill("Paul")
    page.locator("#persons-0-last_name").fill("Martin")
    page.locator("#persons-0-birth_date").fill("01/01/1990")
    page.get_by_label("Adresse e-mail").fill("paul@example.fr")
    page.get_by_label("E-mail", exact=True).check()
    page.get_by_label("Code postal").fill("59000")
    page.get_by_label("Commune").fill("Lille")
    page.get_by_label("Je viens d'arriver dans la région").check()
    page.get_by_label("J'accepte que la CPTS traite ces informations").check()
    page.get_by_role("button", name="Envoyer ma demande").click()
    assert page.get_by_role("button", name="Transmettre ma demande à CPTS Grand-Lille (démo)")
    shoot(page, "intake-out-of-territory")
    out_url = page.url

    for url in (qr_url, confirmation_url, follow_up_url, out_url, live_server + "/"):
        assert serious_violations(axe_page, url) == [], url
    # The error round, as axe sees it.
    axe_page.goto(qr_url)
    axe_page.get_by_role("button", name="Envoyer ma demande").click()
    axe_page.add_script_tag(path=str(AXE))
    result = axe_page.evaluate("async () => await axe.run(document)")
    assert [v["id"] for v in result["violations"] if v["impact"] in ("serious", "critical")] == []


def test_the_questionnaire_works_with_the_keyboard_alone(
    runner: FlaskCliRunner, live_server: str, phone_page: Any
) -> None:
    runner.invoke(args=["demo"])
    page = phone_page
    page.goto(f"{live_server}/cpts/lys-armentieres/demande")
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Enter")
    visited = []
    for _ in range(6):  # past the coordination's phone link, straight to the first field
        page.keyboard.press("Tab")
        visited.append(page.evaluate("document.activeElement.id || document.activeElement.href"))
        if visited[-1] == "persons-0-first_name":
            break
    assert visited[-1] == "persons-0-first_name", visited
    page.keyboard.type("Jeanne")
    page.keyboard.press("Tab")
    page.keyboard.type("Martin")
    assert page.locator("#persons-0-last_name").input_value() == "Martin"


def test_the_optional_script_suggests_the_communes_of_the_postal_code(
    runner: FlaskCliRunner, live_server: str, phone_page: Any
) -> None:
    runner.invoke(args=["demo"])
    page = phone_page
    page.goto(f"{live_server}/cpts/lys-armentieres/demande")
    page.get_by_label("Code postal").fill("59280")
    options = page.locator("#communes-du-code-postal option")
    options.nth(1).wait_for(state="attached")
    assert options.evaluate_all("nodes => nodes.map(n => n.value)") == [
        "Armentières",
        "Bois-Grenier",
    ]
