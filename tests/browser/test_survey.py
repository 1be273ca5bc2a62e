"""A patient answers the year-end survey on a phone, without JavaScript needed."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from playwright.sync_api import expect
from sqlalchemy import select

from models import Message, Status, SurveyAnswer, utcnow
from orientation.links import LinkSigner
from orientation.services.survey import send_surveys


def test_a_patient_answers_the_survey_on_a_phone(
    session, make_territory, make_request, live_server, phone_page, settings
):  # type: ignore[no-untyped-def]
    territory = make_territory(name="CPTS Lys-Armentières")
    make_request(
        territory, status=Status.ORIENTED, closed_at=datetime(2026, 4, 2, tzinfo=UTC),
        agrees_to_survey=True,
    )  # fmt: skip
    send_surveys(session, LinkSigner(settings.secret_key), live_server, 2026, utcnow())
    body = session.scalar(select(Message.body))
    link = re.search(r"http://127\.0\.0\.1:\d+/enquete/\S+", body).group(0)

    page = phone_page
    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Votre avis en 1 minute"
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # no sideways scroll
    page.get_by_role("button", name="Envoyer mon avis").click()
    expect(page.get_by_text("Répondez par oui ou par non.", exact=True)).to_be_visible()
    group = page.get_by_role("group", name="Avez-vous trouvé un médecin traitant ?")
    group.get_by_label("Oui").check()
    page.get_by_label("5 – très").check()
    page.get_by_label("Un commentaire ? (facultatif)").fill("Très rapide, merci !")
    page.get_by_role("button", name="Envoyer mon avis").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Merci pour votre avis"

    answer = session.scalar(select(SurveyAnswer))
    assert (answer.found_gp, answer.satisfaction, answer.comment) == (
        True, 5, "Très rapide, merci !",
    )  # fmt: skip
    page.goto(link)
    assert page.get_by_role("heading", level=1).inner_text() == "Vous avez déjà répondu"
