"""The proposal to the patient by SMS, e-mail or phone; then oriented, closed or confirmed."""

from __future__ import annotations

import html
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    ContactStatus,
    Doctor,
    DoctorContact,
    Message,
    Request,
    RequestEvent,
    Status,
    Territory,
    User,
)
from orientation.links import LinkPurpose, LinkSigner
from tests.conftest import AuthActions

SIGNER = LinkSigner("test-secret-" + "x" * 40)


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
        practice_address="3 place du Général de Gaulle",
        postal_code="59280",
        phone="+33320000001",
        lat=50.689,
        lon=2.881,
    )
    auth.login(make_user(territory))
    return request, doctor


def _send(client: FlaskClient, request: Request, doctor: Doctor, **extra: object) -> object:
    data: dict[str, object] = {
        "mode": "send",
        "doctor_ids": [str(doctor.id)],
        f"distance_{doctor.id}": "0.13",
        "channels": ["sms", "email"],
        "sms_body": "Dr Dupont, 3 place du General de Gaulle, tel 03 20 00 00 01.",
        "email_subject": "Votre médecin traitant",
        "email_body": "Bonjour, le Dr Dupont peut vous recevoir.",
    }
    data.update(extra)
    return client.post(f"/espace/demandes/{request.id}/proposition", data=data)


def test_the_page_drafts_the_proposal_with_the_doctor_and_counts_the_sms(
    client: FlaskClient, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    page = html.unescape(client.get(f"/espace/demandes/{request.id}").get_data(as_text=True))
    assert (
        "Dr Alex Dupont, 3 place du Général de Gaulle, 59280 Armentières, "
        "tél. 03 20 00 00 01 (0,1 km)" in page
    )
    assert "Appelez le cabinet pour un 1er rendez-vous" in page
    assert "data-sms-counter" in page and "js/sms-counter.js" in page
    # "Général" has no ê-like character: é is in the GSM alphabet, the SMS stays GSM-7.
    assert "<span data-sms-encoding>GSM-7</span>" in page
    assert "À 0,1 km de chez vous" in page  # the e-mail draft


def test_sending_the_proposal_queues_the_edited_texts_once_and_marks_it_proposed(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    assert _send(client, request, doctor).status_code == 302  # type: ignore[attr-defined]
    assert _send(client, request, doctor).status_code == 302  # type: ignore[attr-defined]
    messages = session.scalars(
        select(Message).where(Message.purpose == "proposal").order_by(Message.channel)
    ).all()
    assert [(m.channel.value, m.recipient) for m in messages] == [
        ("email", "jeanne@example.org"),
        ("sms", "+33612345678"),
    ]
    assert messages[0].subject == "Votre médecin traitant"
    assert messages[1].body == "Dr Dupont, 3 place du General de Gaulle, tel 03 20 00 00 01."
    session.refresh(request)
    assert request.status == Status.PROPOSED
    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    assert "Proposition par SMS et e-mail : Dr Alex Dupont (0,1 km)" in page


def test_a_proposal_without_channel_is_refused_and_keeps_the_typed_text(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    response = _send(client, request, doctor, channels=[], sms_body="Mon texte à moi")
    assert response.status_code == 422  # type: ignore[attr-defined]
    page = html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]
    assert "Choisissez l'envoi par SMS, par e-mail ou les deux." in page
    assert "Mon texte à moi" in page
    assert session.scalars(select(Message)).all() == []
    session.refresh(request)
    assert request.status == Status.DOCTORS_CONTACTED


def test_a_phone_call_is_recorded_with_its_outcome(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    url = f"/espace/demandes/{request.id}/proposition"
    client.post(url, data={"mode": "phone", "outcome": "no_answer", "doctor_ids": [doctor.id]})
    session.refresh(request)
    assert request.status == Status.DOCTORS_CONTACTED
    client.post(url, data={"mode": "phone", "outcome": "agrees", "doctor_ids": [doctor.id]})
    session.refresh(request)
    assert request.status == Status.PROPOSED
    notes = session.scalars(
        select(RequestEvent.note).where(RequestEvent.kind.in_(["phone_call", "proposal"]))
    ).all()
    assert notes[0].startswith("Appel : pas de réponse.")
    assert notes[1].startswith("Appel : joint, accepte la proposition.")


def test_oriented_with_the_doctor_and_open_contacts_cancelled(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    other = DoctorContact(
        territory_id=request.territory_id, request_id=request.id, doctor_id=doctor.id
    )
    session.add(other)
    session.commit()
    refused = client.post(f"/espace/demandes/{request.id}/orientee", data={"doctor_id": doctor.id})
    assert refused.status_code == 302
    session.refresh(request)
    assert request.status == Status.DOCTORS_CONTACTED  # a proposal comes first
    _send(client, request, doctor)
    client.post(f"/espace/demandes/{request.id}/orientee", data={"doctor_id": doctor.id})
    session.refresh(request)
    session.refresh(other)
    assert request.status == Status.ORIENTED and request.oriented_doctor_id == doctor.id
    assert other.status == ContactStatus.CANCELLED


def test_closing_needs_a_reason(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, _ = case
    refused = client.post(f"/espace/demandes/{request.id}/cloture", data={"reason": ""})
    assert refused.status_code == 422
    assert "Indiquez la raison de la clôture." in refused.get_data(as_text=True)
    client.post(f"/espace/demandes/{request.id}/cloture", data={"reason": "Injoignable"})
    session.refresh(request)
    assert request.status == Status.CLOSED and request.closed_reason == "Injoignable"


def test_the_patient_confirms_through_their_private_link(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    token = SIGNER.make(LinkPurpose.PATIENT_REQUEST, request.id)
    too_early = client.post(f"/suivi/{token}/confirmer")
    assert too_early.status_code == 409
    session.add(
        DoctorContact(
            territory_id=request.territory_id,
            request_id=request.id,
            doctor_id=doctor.id,
            status=ContactStatus.ACCEPTED,
        )
    )
    session.commit()
    _send(client, request, doctor)
    wrong_purpose = SIGNER.make(LinkPurpose.DOCTOR_ANSWER, request.id)
    assert client.post(f"/suivi/{wrong_purpose}/confirmer").status_code == 404
    done = client.post(f"/suivi/{token}/confirmer")
    assert done.status_code == 200 and "c'est confirmé" in html.unescape(
        done.get_data(as_text=True)
    )
    session.refresh(request)
    assert request.status == Status.ORIENTED and request.oriented_doctor_id == doctor.id
    assert request.events[-1].actor_label == "patient"


def test_after_a_refused_proposal_an_unticked_channel_stays_unticked(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor]
) -> None:
    request, doctor = case
    response = _send(client, request, doctor, channels=["email"], email_body="  ")
    assert response.status_code == 422  # type: ignore[attr-defined]
    page = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert "Le texte de l&#39;e-mail est vide." in page or "Le texte de l'e-mail est vide." in page
    assert '<input type="checkbox" name="channels" value="sms">' in page
    assert '<input type="checkbox" name="channels" value="email" checked>' in page
    assert session.scalars(select(Message)).all() == []
