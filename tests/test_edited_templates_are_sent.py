"""A CPTS admin's edited wording is what patients and doctors actually receive.

The template editor (tests/test_message_templates.py) checks and stores the text; these tests
follow it to the outbox: the acknowledgement of a questionnaire, the proposal drafted on the
request page, and the six-month reminder to a doctor. A stored text that fails on real values
falls back to the shipped wording rather than failing the patient's submission.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Channel,
    Doctor,
    Message,
    MessageTemplate,
    Request,
    Role,
    Status,
    Territory,
    User,
    utcnow,
)
from tests.conftest import AuthActions
from tests.test_intake import answers


def _edit(client: FlaskClient, key: str, channel: str, body: str) -> None:
    """Save a template through the admin page, as a CPTS admin does."""
    response = client.post(
        f"/espace/modeles/{key}/{channel}", data={"body": body, "action": "save"}
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def test_the_questionnaire_acknowledgement_uses_the_cpts_wording(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    ours = make_territory("CPTS Lys", ["59017"])
    theirs = make_territory("CPTS Flandre", ["59183"])
    auth.login(make_user(ours, Role.CPTS_ADMIN))
    _edit(
        client,
        "acknowledgement",
        "sms",
        "Lys a bien recu votre demande {{ reference }}. {{ link }}",
    )
    auth.logout()

    client.post(f"/cpts/{ours.slug}/demande", data=answers(nonce="ours"))
    client.post(
        f"/cpts/{theirs.slug}/demande",
        data=answers(nonce="theirs", postal_code="59140", commune="Dunkerque"),
    )
    bodies = {
        m.territory_id: m.body
        for m in session.scalars(select(Message).where(Message.purpose == "acknowledgement"))
    }
    reference = session.scalars(
        select(Request.reference).where(Request.territory_id == ours.id)
    ).one()
    assert bodies[ours.id].startswith(f"Lys a bien recu votre demande {reference}. http")
    # Another CPTS keeps the shipped text.
    assert bodies[theirs.id].startswith("CPTS Flandre : demande de médecin traitant enregistrée")


def test_a_stored_text_that_fails_on_real_values_falls_back_and_the_submission_is_kept(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = make_territory("CPTS Lys", ["59017"])
    # Stored before a variable was renamed, say: the editor would refuse it today.
    session.add(
        MessageTemplate(
            territory_id=territory.id,
            key="acknowledgement",
            channel=Channel.SMS,
            body="Reference {{ old_name }}",
        )
    )
    session.commit()
    response = client.post(f"/cpts/{territory.slug}/demande", data=answers(nonce="n"))
    assert response.status_code == 303
    request = session.scalars(select(Request)).one()
    message = session.scalars(select(Message)).one()
    assert message.body.startswith("CPTS Lys : demande de médecin traitant enregistrée")
    assert request.reference in message.body


def test_the_proposal_draft_on_the_request_page_uses_the_cpts_wording(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory(name="CPTS Lys")
    request = make_request(territory, Status.DOCTORS_CONTACTED, phone="+33612345678")
    request.lat, request.lon = 50.688, 2.88
    make_doctor(territory, last_name="Dupont", lat=50.689, lon=2.881)
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    _edit(
        client,
        "proposal",
        "sms",
        "{% for d in doctors %}{{ d.name }} ({{ d.distance }}){% endfor %} - ref {{ reference }}"
        " {{ follow_url }}",
    )
    page = html.unescape(client.get(f"/espace/demandes/{request.id}").get_data(as_text=True))
    assert f"Dr Alex Dupont (0,1 km) - ref {request.reference}" in page


def test_the_doctor_reminder_uses_the_cpts_wording(
    client: FlaskClient,
    runner: FlaskCliRunner,
    session: Session,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory(name="CPTS Lys")
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    _edit(client, "doctor_reminder", "sms", "{{ cpts_name }} : vos places ? {{ link }}")
    make_doctor(
        territory,
        phone="+33612345678",
        preferred_channel="sms",
        confirmed_at=utcnow() - timedelta(days=175),
    )
    assert runner.invoke(args=["doctors", "remind"]).exit_code == 0
    message = session.scalars(select(Message)).one()
    assert message.body.startswith("CPTS Lys : vos places ? http://localhost/medecin/")
