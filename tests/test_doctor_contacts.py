"""Asking doctors: an anonymised message with two signed links; answers taken once; an accept
reserves one place, never below zero, even when two answers race."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import date

import pytest
from flask import Flask
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
    utcnow,
)
from models.engine import make_sessionmaker
from orientation.services.doctor_contacts import AnswerOutcome, load_answer_case, record_answer
from tests.conftest import AuthActions


def _ask(client: FlaskClient, request: Request, *doctors: Doctor) -> None:
    response = client.post(
        f"/espace/demandes/{request.id}/solliciter",
        data={"mode": "chosen", "doctor_ids": [str(d.id) for d in doctors]},
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def _links(body: str) -> tuple[str, str]:
    found = re.findall(r"http://localhost(/medecin/reponse/\S+)", body)
    assert len(found) == 2
    return found[0], found[1]


@pytest.fixture
def asked(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> tuple[Request, Doctor, Message]:
    territory = make_territory(name="CPTS Lys")
    request = make_request(
        territory,
        persons=[("Odette", "Lemaire", date(1948, 2, 3))],
        street="12 rue des Lilas",
        phone="+33611223344",
        need_home_visits=True,
        lat=50.688,
        lon=2.88,
    )
    doctor = make_doctor(
        territory, email="dr@example.org", capacity_left=2, home_visits=True,
        home_visit_radius_km=10, lat=50.689, lon=2.881,
    )  # fmt: skip
    auth.login(make_user(territory))
    _ask(client, request, doctor)
    message = session.scalars(select(Message).where(Message.doctor_id == doctor.id)).one()
    auth.logout()
    return request, doctor, message


def test_doctor_message_is_anonymised_and_carries_two_links(
    session: Session, asked: tuple[Request, Doctor, Message]
) -> None:
    request, doctor, message = asked
    assert message.channel.value == "email" and message.recipient == "dr@example.org"
    assert message.purpose == "doctor_request"
    body = message.body
    assert "O. L." in body and "70 ans ou plus" in body and "Armentières" in body
    assert "visites à domicile" in body
    for secret in ("Odette", "Lemaire", "Lilas", "0611223344", "+33611223344", "1948"):
        assert secret not in body
    accept, decline = _links(body)
    assert accept != decline
    session.refresh(request)
    assert request.status == Status.DOCTORS_CONTACTED
    contact = session.scalars(select(DoctorContact)).one()
    assert (contact.status, contact.position, contact.doctor_id) == (
        ContactStatus.ASKED, 1, doctor.id,
    )  # fmt: skip


def test_doctor_accepts_through_the_link_once_and_a_place_is_reserved(
    client: FlaskClient, session: Session, asked: tuple[Request, Doctor, Message]
) -> None:
    request, doctor, message = asked
    accept, _ = _links(message.body)
    page = client.get(accept).get_data(as_text=True)
    assert "O. L." in page and "Oui, je peux le prendre" in page and "Odette" not in page
    done = client.post(accept, data={"answer": "accept"}).get_data(as_text=True)
    assert "votre accord est enregistré" in done
    session.refresh(doctor)
    assert doctor.capacity_left == 1
    replay = client.post(accept, data={"answer": "accept"}).get_data(as_text=True)
    assert "déjà enregistrée" in replay
    session.refresh(doctor)
    assert doctor.capacity_left == 1  # the replayed link changed nothing
    events = session.scalars(
        select(RequestEvent.kind).where(RequestEvent.request_id == request.id)
    ).all()
    assert events.count("doctor_accepted") == 1


def test_doctor_declines_and_the_answer_lands_on_the_timeline(
    client: FlaskClient, session: Session, asked: tuple[Request, Doctor, Message]
) -> None:
    request, doctor, message = asked
    _, decline = _links(message.body)
    client.post(decline, data={"answer": "decline"})
    contact = session.scalars(select(DoctorContact)).one()
    assert contact.status == ContactStatus.DECLINED and contact.answered_at is not None
    session.refresh(doctor)
    assert doctor.capacity_left == 2
    event = session.scalar(select(RequestEvent).where(RequestEvent.kind == "doctor_declined"))
    assert event is not None and event.actor_label == f"doctor:{doctor.id}"


def test_tampered_and_expired_links_get_a_clear_page_and_change_nothing(
    client: FlaskClient,
    session: Session,
    asked: tuple[Request, Doctor, Message],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, doctor, message = asked
    accept, _ = _links(message.body)
    tampered = client.post(accept[:-3] + "abc", data={"answer": "accept"})
    assert tampered.status_code == 404
    assert "Ce lien ne peut pas être utilisé" in tampered.get_data(as_text=True)
    later = time.time() + 15 * 24 * 3600  # answer links live 14 days
    monkeypatch.setattr(time, "time", lambda: later)
    expired = client.post(accept, data={"answer": "accept"})
    assert expired.status_code == 410 and "a expiré" in expired.get_data(as_text=True)
    session.refresh(doctor)
    assert doctor.capacity_left == 2
    assert session.scalars(select(DoctorContact.status)).one() == ContactStatus.ASKED


def test_no_place_left_refuses_the_accept_and_keeps_the_contact_open(
    client: FlaskClient, session: Session, asked: tuple[Request, Doctor, Message]
) -> None:
    _, doctor, message = asked
    doctor.capacity_left = 0
    session.commit()
    accept, _ = _links(message.body)
    page = client.post(accept, data={"answer": "accept"}).get_data(as_text=True)
    assert "plus de place déclarée" in page
    session.refresh(doctor)
    assert doctor.capacity_left == 0
    assert session.scalars(select(DoctorContact.status)).one() == ContactStatus.ASKED


def test_two_accepts_racing_for_the_last_place_cannot_both_win(
    app: Flask,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    doctor = make_doctor(territory, capacity_left=1)
    contact_ids = []
    for _ in range(2):
        request = make_request(territory, Status.DOCTORS_CONTACTED)
        contact = DoctorContact(
            territory_id=territory.id, request_id=request.id, doctor_id=doctor.id
        )
        session.add(contact)
        session.commit()
        contact_ids.append(contact.id)
    factory = make_sessionmaker(app.extensions["orientation.engine"])
    first_updated = threading.Event()
    outcomes: dict[int, AnswerOutcome] = {}
    errors: list[BaseException] = []

    def answer(contact_id: int, first: bool) -> None:
        # Each thread has its own connection: two coordinators' doctors answering at once.
        db = factory()
        try:
            if not first:
                first_updated.wait(5)
            case = load_answer_case(db, contact_id)
            assert case is not None
            outcome = record_answer(db, case, True, utcnow())
            outcomes[contact_id] = outcome
            if first:
                first_updated.set()
                time.sleep(0.5)  # hold the row lock while the other one tries
            if outcome is AnswerOutcome.NO_CAPACITY:
                db.rollback()
            else:
                db.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            first_updated.set()
        finally:
            db.close()

    threads = [
        threading.Thread(target=answer, args=(contact_ids[0], True)),
        threading.Thread(target=answer, args=(contact_ids[1], False)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert errors == []
    assert sorted(outcomes.values()) == [AnswerOutcome.ACCEPTED, AnswerOutcome.NO_CAPACITY]
    session.refresh(doctor)
    assert doctor.capacity_left == 0
    statuses = session.scalars(select(DoctorContact.status).order_by(DoctorContact.id)).all()
    assert sorted(statuses) == [ContactStatus.ACCEPTED, ContactStatus.ASKED]


def test_a_doctor_already_asked_is_marked_in_the_ranking_and_not_asked_again(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_user: Callable[..., User],
    asked: tuple[Request, Doctor, Message],
) -> None:
    request, doctor, message = asked
    client.post(_links(message.body)[1], data={"answer": "decline"})
    auth.login(make_user(session.get(Territory, request.territory_id)))
    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    assert f'id="ask-{doctor.id}"' not in page  # no box to tick
    assert "déjà sollicité" in page and "(refuse)" in page
    again = client.post(
        f"/espace/demandes/{request.id}/solliciter",
        data={"mode": "chosen", "doctor_ids": [str(doctor.id)]},
        follow_redirects=True,
    )
    assert "Ces médecins ont déjà été sollicités pour cette demande." in again.get_data(
        as_text=True
    ).replace("&#39;", "'")
    assert len(session.scalars(select(Message).where(Message.doctor_id == doctor.id)).all()) == 1
