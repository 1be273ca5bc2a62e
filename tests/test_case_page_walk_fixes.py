"""The request page as a coordinator walked it: settled requests, a second proposal, errors
shown where they are seen, distances and addresses in the messages, a timeline in French."""

from __future__ import annotations

import html
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    Channel,
    Doctor,
    DoctorContact,
    Message,
    Request,
    RequestEvent,
    Status,
    Territory,
    User,
    utcnow,
)
from notifications.outbox import queue_message
from orientation.services.local_time import in_paris
from orientation.services.proposal import full_address
from orientation.services.workflow import change_status, record_event
from tests.conftest import AuthActions


def today() -> str:
    """Today as the pages write it: the Paris day, read when asked (a run may cross midnight)."""
    return in_paris(utcnow()).strftime("%d/%m/%Y")


# What changes a request: none of it is offered once it is settled.
ACTION_LABELS = (
    "Solliciter les médecins cochés",
    "Lancer une cascade",
    "Corriger le point",
    "Envoyer la proposition",
    "Marquer comme orientée",
    "Clôturer la demande",
    "Accepter (dérogation)",
)


@pytest.fixture
def case(
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> tuple[Request, Doctor]:
    territory = make_territory(name="CPTS Lys")
    request = make_request(
        territory,
        Status.DOCTORS_CONTACTED,
        email="jeanne@example.org",
        phone="+33612345678",
        lat=50.688,
        lon=2.88,
    )
    doctor = make_doctor(
        territory,
        last_name="Dupont",
        practice_address="86 rue de la Gare",
        postal_code="59280",
        phone="+33320000001",
        email="dupont@example.org",
        lat=50.689,
        lon=2.881,
    )
    auth.login(make_user(territory))
    return request, doctor


def _page(client: FlaskClient, request: Request) -> str:
    return html.unescape(client.get(f"/espace/demandes/{request.id}").get_data(as_text=True))


def _send(
    client: FlaskClient, request: Request, doctor: Doctor, nonce: str, **extra: str
) -> tuple[int, str]:
    response = client.post(
        f"/espace/demandes/{request.id}/proposition",
        data={
            "mode": "send",
            "nonce": nonce,
            "doctor_ids": [str(doctor.id)],
            "channels": ["sms", "email"],
            "sms_body": "Le Dr Dupont peut vous recevoir.",
            "email_subject": "Votre médecin traitant",
            "email_body": "Bonjour, le Dr Dupont peut vous recevoir.",
            **extra,
        },
    )
    return response.status_code, html.unescape(response.get_data(as_text=True))


def _count(session: Session, model: type[Message] | type[DoctorContact]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


# 1. A settled request: read only, with why.


def test_a_closed_request_says_since_when_and_offers_no_form_that_changes_it(
    client: FlaskClient, case: tuple[Request, Doctor]
) -> None:
    request, _ = case
    assert all(label in _page(client, request) for label in ACTION_LABELS[:4])
    client.post(f"/espace/demandes/{request.id}/cloture", data={"reason": "A trouvé seule"})
    page = _page(client, request)
    assert f"Demande clôturée le {today()} : plus d'action possible." in page
    assert "Raison : A trouvé seule." in page
    assert not any(label in page for label in ACTION_LABELS)
    assert "Enregistrer l'appel" not in page
    assert "data-patient-move-url" not in page  # the map's marker cannot be dragged
    # Still there to read: the answers, the ranking and the timeline.
    assert "Jeanne Martin" in page and "Dr Alex Dupont" in page and "A trouvé seule" in page


ACTIONS = {
    "ask the ticked doctors": ("solliciter", {"mode": "chosen"}),
    "start a cascade": ("solliciter", {"mode": "cascade"}),
    "send the proposal": (
        "proposition",
        {"mode": "send", "channels": ["sms"], "sms_body": "Dr Dupont, 03 20 00 00 01."},
    ),
    "record a phone call": ("proposition", {"mode": "phone", "outcome": "agrees"}),
    "mark it oriented": ("orientee", {}),
    "close it again": ("cloture", {"reason": "Le patient a déménagé"}),
    "close it without a reason": ("cloture", {"reason": ""}),
    "move the home's point": ("position", {"lat": "50.7", "lon": "2.9"}),
    "accept it on the territory": ("territoire", {"reason": "Habite à la limite"}),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_every_action_on_a_closed_request_is_refused_with_the_reason_and_changes_nothing(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor], action: str
) -> None:
    request, doctor = case
    client.post(f"/espace/demandes/{request.id}/cloture", data={"reason": "A trouvé seule"})
    session.refresh(request)
    events = len(request.events)
    path, data = ACTIONS[action]
    response = client.post(
        f"/espace/demandes/{request.id}/{path}",
        data={**data, "doctor_ids": [str(doctor.id)], "doctor_id": str(doctor.id)},
        follow_redirects=True,
    )
    page = html.unescape(response.get_data(as_text=True))
    assert page.count(f"Demande clôturée le {today()} : plus d'action possible.") == 2  # + flash
    assert "statut éligible" not in page and "déjà terminée" not in page
    session.expire_all()
    assert request.status is Status.CLOSED
    assert (request.lat, request.lon) == (50.688, 2.88)
    assert len(request.events) == events
    assert _count(session, DoctorContact) == 0
    assert _count(session, Message) == 0


def test_the_map_gets_the_closed_request_refusal_as_json(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, _ = case
    client.post(f"/espace/demandes/{request.id}/cloture", data={"reason": "A trouvé seule"})
    response = client.post(
        f"/espace/demandes/{request.id}/position", json={"lat": 50.7, "lon": 2.9}
    )
    assert response.status_code == 409
    ended = f"Demande clôturée le {today()} : plus d'action possible."
    assert response.get_json()["error"] == ended
    session.refresh(request)
    assert request.lat == 50.688


def test_a_withdrawn_request_says_so(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, _ = case
    change_status(request, Status.WITHDRAWN, now=utcnow(), actor_label="patient")
    session.commit()
    page = _page(client, request)
    assert f"Demande retirée le {today()} : plus d'action possible." in page
    assert not any(label in page for label in ACTION_LABELS)
    assert "Enregistrer l'appel" not in page


def test_an_oriented_request_only_lets_the_coordinator_note_a_call_back(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    assert _send(client, request, doctor, "a1a1a1a1a1a1a1a1")[0] == 302
    client.post(f"/espace/demandes/{request.id}/orientee", data={"doctor_id": str(doctor.id)})
    page = _page(client, request)
    assert f"Demande orientée le {today()} : plus d'action possible." in page
    assert not any(label in page for label in ACTION_LABELS)
    assert "Appel au patient (suivi)" in page and "Enregistrer l'appel" in page
    assert "joint, accepte la proposition" not in page  # nothing left to propose
    url = f"/espace/demandes/{request.id}/proposition"
    refused = client.post(url, data={"mode": "phone", "outcome": "agrees"})
    assert refused.status_code == 422
    assert "Indiquez le résultat de l'appel." in html.unescape(refused.get_data(as_text=True))
    noted = client.post(
        url, data={"mode": "phone", "outcome": "reached", "call_note": "Déclaration faite"}
    )
    assert noted.status_code == 302
    session.expire_all()
    assert request.status is Status.ORIENTED
    call = session.scalars(select(RequestEvent).where(RequestEvent.kind == "phone_call")).one()
    assert call.note == "Appel : joint. Déclaration faite"


# 2. A second proposal is sent on purpose only; a double click sends one.


def test_a_double_click_on_the_proposal_form_sends_it_once(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    assert _send(client, request, doctor, "b2b2b2b2b2b2b2b2")[0] == 302
    assert _send(client, request, doctor, "b2b2b2b2b2b2b2b2")[0] == 302
    assert _count(session, Message) == 2  # one SMS, one e-mail
    proposals = select(RequestEvent).where(RequestEvent.kind == "proposal")
    assert len(session.scalars(proposals).all()) == 1


def test_a_second_proposal_is_announced_and_needs_an_explicit_tick(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    response = client.post(
        f"/espace/demandes/{request.id}/proposition",
        data={
            "mode": "send",
            "nonce": "c3c3c3c3c3c3c3c3",
            "doctor_ids": [str(doctor.id)],
            "channels": ["sms", "email"],
            "sms_body": "Le Dr Dupont peut vous recevoir.",
            "email_body": "Bonjour.",
        },
        follow_redirects=True,
    )
    assert "Proposition envoyée (SMS, e-mail)." in html.unescape(response.get_data(as_text=True))
    sent_at = session.scalars(select(Message.created_at)).first()
    assert sent_at is not None
    page = _page(client, request)
    assert (
        f"Proposition déjà envoyée le {in_paris(sent_at):%d/%m/%Y à %H:%M} (SMS, e-mail)." in page
    )
    assert 'id="again" name="again" value="1"' in page

    code, page = _send(client, request, doctor, "d4d4d4d4d4d4d4d4")
    assert code == 422
    assert "Pour en envoyer une autre, cochez « Envoyer une nouvelle proposition »." in page
    assert 'href="#again"' in page  # the error summary leads to the tick box
    assert _count(session, Message) == 2

    assert _send(client, request, doctor, "d4d4d4d4d4d4d4d4", again="1")[0] == 302
    assert _count(session, Message) == 4


# 3. Errors are said at the top of the page, with a link to the field.


@pytest.mark.parametrize(
    ("path", "field", "message"),
    [
        ("cloture", "close-reason", "Indiquez la raison de la clôture."),
        ("position", "lat", "La latitude doit être un nombre entre 41 et 51,6 (France)."),
    ],
)
def test_a_refused_form_is_summarised_at_the_top_with_a_link_to_its_field(
    client: FlaskClient, case: tuple[Request, Doctor], path: str, field: str, message: str
) -> None:
    request, _ = case
    response = client.post(f"/espace/demandes/{request.id}/{path}", data={"reason": ""})
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    summary = page.index('class="error-summary" role="alert"')
    assert summary < page.index('id="answers-title"')  # before anything else on the page
    assert f'<a href="#{field}">' in page[summary:] and message in page[summary:]
    assert f'id="{field}"' in page


def test_an_empty_override_reason_is_summarised_at_the_top(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, _ = case
    request.status = Status.OUT_OF_TERRITORY
    session.commit()
    response = client.post(f"/espace/demandes/{request.id}/territoire", data={"reason": ""})
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    summary = page.index('class="error-summary" role="alert"')
    assert summary < page.index('id="answers-title"')
    assert '<a href="#override-reason">' in page[summary:]


# 4. The distance told on the phone is the one on the page.


def test_a_phone_call_after_the_proposal_keeps_the_doctors_distance(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    # A forged or stale distance in the form is not what the patient is told.
    assert _send(client, request, doctor, "e5e5e5e5e5e5e5e5", **{f"distance_{doctor.id}": "9"})[0]
    # What the phone-call form posts: the ticked doctors, no distance.
    client.post(
        f"/espace/demandes/{request.id}/proposition",
        data={"mode": "phone", "outcome": "thinks", "doctor_ids": [str(doctor.id)]},
    )
    notes = session.scalars(
        select(RequestEvent.note)
        .where(RequestEvent.kind.in_(["proposal", "phone_call"]))
        .order_by(RequestEvent.id)
    ).all()
    assert notes == [
        "Proposition par SMS et e-mail : Dr Alex Dupont (0,1 km)",
        "Appel : joint, réfléchit. Médecins proposés : Dr Alex Dupont (0,1 km).",
    ]


# 5. Addresses name the commune.


def test_the_ranking_and_the_proposal_give_the_commune_of_the_practice(
    client: FlaskClient, case: tuple[Request, Doctor]
) -> None:
    request, _ = case
    page = _page(client, request)
    assert "<td>86 rue de la Gare 59280 Armentières</td>" in page  # the ranking table
    sms = page.split('name="sms_body"', 1)[1].split("</textarea>", 1)[0]
    assert "Dr Alex Dupont, 86 rue de la Gare, 59280 Armentières, tél." in sms


def test_an_address_names_the_commune_only_when_it_is_known_for_sure() -> None:
    assert full_address("1 rue X", "59280", "59017") == "1 rue X, 59280 Armentières"
    # 59280 is Armentières and Bois-Grenier: without the INSEE code, no guess.
    assert full_address("1 rue X", "59280", None) == "1 rue X, 59280"


# 6. The timeline in French.


def test_the_timeline_names_people_and_says_messages_in_french(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    now = utcnow()
    record_event(request, "doctor_accepted", now=now, actor_label=f"doctor:{doctor.id}")
    record_event(request, "follow_up_sent", now=now, actor_label="system")
    queue_message(
        session,
        territory_id=request.territory_id,
        channel=Channel.EMAIL,
        recipient="dupont@example.org",
        body="Une demande près de chez vous.",
        purpose="doctor_request",
        idempotency_key="walk-doctor-request",
        request_id=request.id,
        doctor_id=doctor.id,
    )
    session.commit()
    timeline = _page(client, request).split('id="timeline-title"', 1)[1]
    assert '<span class="who">Dr Alex Dupont</span>' in timeline
    assert '<span class="who">système</span>' in timeline
    assert "Suivi envoyé au patient" in timeline
    assert "sollicitation du médecin" in timeline and "En attente d'envoi" in timeline
    for code in ("doctor:", ">system<", "doctor_request", ">queued<"):
        assert code not in timeline


def test_a_corrected_point_says_how_it_was_placed_in_french(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, _ = case
    url = f"/espace/demandes/{request.id}/position"
    client.post(url, data={"lat": "50.69", "lon": "2.88"})
    client.post(url, data={"lat": "50.7", "lon": "2.88"})
    notes = session.scalars(
        select(RequestEvent.note)
        .where(RequestEvent.kind == "point_corrected")
        .order_by(RequestEvent.id)
    ).all()
    assert "(non localisé)" in notes[0] and "(placé à la main)" in notes[1]


def test_the_household_address_names_its_commune(
    client: FlaskClient, case: tuple[Request, Doctor]
) -> None:
    request, _ = case
    page = _page(client, request)
    assert f"{request.postal_code} Armentières" in page
    assert f"({request.commune_insee})" not in page
