"""On a phone, the person reads the proposal on their private link, says it does not suit them,
then erases their data: each page fits the screen, weighs under 100 KB and passes axe-core."""

from __future__ import annotations

from typing import Any

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from models import Doctor, Request, Status
from tests.browser.test_questionnaire import (  # noqa: F401 - axe_page: the fixture, by name
    Weigher,
    axe_page,
    serious_violations,
    shoot,
)
from tests.test_patient_proposal import link_of
from tests.test_proposal import _send, case  # noqa: F401 - the fixture, used by name

LONG_LINK = "https://orientation.example.org/suivi/" + "WzcsMCwiIl0.axDMWA." * 4


def test_a_person_declines_the_proposal_then_erases_their_data_on_a_phone(
    client: FlaskClient,
    session: Session,
    live_server: str,
    phone_page: Any,
    axe_page: Any,  # noqa: F811
    case: tuple[Request, Doctor],  # noqa: F811
) -> None:
    request, doctor = case
    body = f"Bonjour, le Dr Dupont peut vous recevoir.\nPour nous répondre : {LONG_LINK}"
    _send(client, request, doctor, email_body=body)
    link = live_server + link_of(request)
    page = phone_page
    weigher = Weigher(page)

    size = weigher.weigh(lambda: page.goto(link))
    proposal = page.get_by_role("region", name="La proposition de la CPTS")
    assert "le Dr Dupont peut vous recevoir" in proposal.inner_text()
    # The message's long link wraps: the page does not scroll sideways on a phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    assert size < 100_000, f"the follow-up page weighs {size} bytes"
    shoot(page, "patient-proposal")
    assert serious_violations(axe_page, link) == []

    page.get_by_label("La proposition ne vous convient pas ? Dites-nous pourquoi").fill(
        "Trop loin sans voiture"
    )
    page.get_by_role("button", name="Cette proposition ne me convient pas").click()
    assert "la coordination reprend votre demande" in page.get_by_role("status").inner_text()
    assert "En cours" in page.locator("main").inner_text()
    assert page.get_by_role("button", name="Je confirme : la proposition me convient").count() == 0
    session.expire_all()
    assert session.get(Request, request.id).status is Status.IN_PROGRESS  # type: ignore[union-attr]

    page.get_by_role("link", name="Effacer mes données").click()
    page.get_by_label("Je confirme : effacer mes données et retirer ma demande.").check()
    page.get_by_role("button", name="Effacer mes données").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Vos données sont effacées"

    gone = page.goto(link)
    assert gone is not None and gone.status == 410
    assert page.get_by_role("heading", level=1).inner_text() == "Cette demande a été effacée"
    assert page.get_by_role("link", name="Faire une nouvelle demande").is_visible()
    shoot(page, "patient-erased")
    assert serious_violations(axe_page, link) == []
