"""Fixes from the security review: the cost of an edited message template, line breaks in a
proposal's e-mail subject, and a doctor's name shown as HTML on the request page's map."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, Doctor, Message, MessageTemplate, Request, Role, Territory, User
from notifications.templates import MAX_RENDERED_LENGTH, MessageTemplateError, render_message
from orientation.services.proposal import ProposalInput, send_proposal
from orientation.services.request_case import CaseError
from tests.conftest import AuthActions
from tests.test_intake import answers

COSTLY = [
    "{{ (7**(3*10**7)) > 0 }} {{ link }}",
    '{{ "a"*10**8 }} {{ link }}',
    "{{ [0] * 10**8 }} {{ link }}",
    "{{ 10**1000 * 10**1000 * 10**1000 * 10**1000 * 10**1000 }} {{ link }}",
    '{{ "%0999999999d" % 1 }} {{ link }}',
    '{{ "x"|center(100000000) }} {{ link }}',
    "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}{{ link }}",
]


@pytest.mark.parametrize("body", COSTLY)
def test_the_editor_refuses_a_template_that_asks_too_much_in_french(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    body: str,
) -> None:
    auth.login(make_user(make_territory(), Role.CPTS_ADMIN))
    response = client.post(
        "/espace/modeles/doctor_reminder/sms", data={"body": body, "action": "save"}
    )
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code != 302
    assert re.search(
        r"modèle « doctor_reminder » : (calcul trop grand|texte ou liste de plus de|"
        r"largeur de mise en forme trop grande|le message obtenu dépasse)",
        page,
    ), page
    assert session.scalars(select(MessageTemplate)).all() == []


def test_reasonable_arithmetic_still_renders() -> None:
    rendered = render_message(
        "x", Channel.SMS, {}, override='{{ 2**10 }} {{ "ab" * 3 }} {{ 7 % 3 }} {{ "%03d" % 5 }}'
    )
    assert rendered.body == "1024 ababab 1 005"


def test_a_rendering_longer_than_a_message_is_an_error() -> None:
    with pytest.raises(MessageTemplateError, match=f"dépasse {MAX_RENDERED_LENGTH} caractères"):
        render_message("x", Channel.SMS, {"n": "y" * 30_000}, override="{{ n }}")


@pytest.mark.parametrize(
    "body",
    [
        '{% if reference != "K7QM-4T2X" %}{{ 7**(3*10**7) }}{% endif %}{{ reference }} {{ link }}',
        '{% if reference != "K7QM-4T2X" %}{{ reference * 10000 }}{% endif %} {{ link }}',
    ],
)
def test_a_stored_text_too_costly_on_real_values_falls_back_to_the_shipped_wording(
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    body: str,
) -> None:
    territory = make_territory("CPTS Lys", ["59017"])
    # Hidden behind a condition that the editor's sample values do not take.
    session.add(
        MessageTemplate(
            territory_id=territory.id, key="acknowledgement", channel=Channel.SMS, body=body
        )
    )
    session.commit()
    response = client.post(f"/cpts/{territory.slug}/demande", data=answers(nonce="n"))
    assert response.status_code == 303
    request = session.scalars(select(Request)).one()
    message = session.scalars(select(Message)).one()
    assert message.body.startswith("CPTS Lys : demande de médecin traitant enregistrée")
    assert request.reference in message.body


@pytest.mark.parametrize("subject", ["Votre médecin\r\nBcc: x@example.org", "Objet\nsuite"])
def test_a_proposal_subject_with_a_line_break_is_refused_and_nothing_is_queued(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
    subject: str,
) -> None:
    territory = make_territory()
    request = make_request(territory, email="patient@example.org")
    data = ProposalInput(
        [(make_doctor(territory), 1.0)],
        frozenset({Channel.EMAIL}),
        email_subject=subject,
        email_body="Bonjour",
    )
    with pytest.raises(CaseError, match="une seule ligne") as refused:
        send_proposal(session, territory, request, data, now=request.created_at, user_id=1)
    assert refused.value.field == "email_subject"
    assert session.scalars(select(Message)).all() == []
