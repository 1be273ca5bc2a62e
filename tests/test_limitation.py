"""Limitation of processing (RGPD article 18): a limited request is kept but not worked on,
until the patient asks to lift the limitation."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    ContactStatus,
    Doctor,
    DoctorContact,
    Message,
    MessageStatus,
    Request,
    RequestEvent,
    Status,
    Territory,
    User,
    utcnow,
)
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.cascade import advance_cascades, start_cascade
from orientation.services.doctor_contacts import Links
from orientation.services.followup import send_follow_ups
from orientation.services.local_time import in_paris
from orientation.services.rights import RightKind, process_rights_request
from orientation.services.survey import send_surveys
from orientation.services.workflow import change_status
from tests.conftest import AuthActions

SECRET = "test-secret-" + "x" * 40  # the test app's (conftest.settings)
SIGNER = LinkSigner(SECRET)
LINKS = Links(SIGNER, "http://localhost")
REFUSED = "Le traitement de cette demande est limité depuis le"


@pytest.fixture
def case(
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> tuple[Request, Doctor, User]:
    """A proposed request (every coordinator action is open at this status), a doctor who
    fits, a coordinator logged in."""
    territory = make_territory(name="CPTS Lys")
    request = make_request(
        territory, Status.PROPOSED, email="jeanne@example.org", lat=50.688, lon=2.88
    )
    doctor = make_doctor(territory, email="dupont@example.org", lat=50.689, lon=2.881)
    user = make_user(territory)
    auth.login(user)
    return request, doctor, user


def _limit(client: FlaskClient, request: Request) -> None:
    response = client.post(
        f"/espace/droits/{request.id}",
        data={"kind": "limitation", "note": "Courrier du 2 décembre"},
    )
    assert response.status_code == 302


def _outbox(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Message)) or 0


def _page(client: FlaskClient, url: str) -> str:
    return html.unescape(client.get(url).get_data(as_text=True))


ACTIONS = {
    "ask the ticked doctors": ("solliciter", {"mode": "chosen"}),
    "start a cascade": ("solliciter", {"mode": "cascade"}),
    "send the proposal": (
        "proposition",
        {"mode": "send", "channels": ["sms"], "sms_body": "Dr Dupont, 03 20 00 00 01."},
    ),
    "record a phone call": ("proposition", {"mode": "phone", "outcome": "agrees"}),
    "mark it oriented": ("orientee", {}),
    "close it": ("cloture", {"reason": "Le patient a déménagé"}),
    "move the home's point": ("position", {"lat": "50.7", "lon": "2.9"}),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_a_limited_request_cannot_be_worked_on_from_its_page(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor, User], action: str
) -> None:
    request, doctor, _ = case
    _limit(client, request)
    session.refresh(request)
    events = len(request.events)
    path, data = ACTIONS[action]
    response = client.post(
        f"/espace/demandes/{request.id}/{path}",
        data={**data, "doctor_ids": [str(doctor.id)], "doctor_id": str(doctor.id)},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/espace/demandes/{request.id}")
    page = _page(client, f"/espace/demandes/{request.id}")
    assert REFUSED in page
    session.expire_all()
    assert request.status is Status.PROPOSED
    assert (request.lat, request.lon) == (50.688, 2.88)
    assert request.cascade_state == ""
    assert len(request.events) == events
    assert session.scalars(select(DoctorContact)).all() == []
    assert _outbox(session) == 0


def test_the_map_gets_the_refusal_as_json(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor, User]
) -> None:
    request, _, _ = case
    _limit(client, request)
    response = client.post(
        f"/espace/demandes/{request.id}/position", json={"lat": 50.7, "lon": 2.9}
    )
    assert response.status_code == 409
    assert response.get_json()["error"].startswith(REFUSED)
    session.refresh(request)
    assert request.lat == 50.688


def test_the_page_shows_the_banner_keeps_the_answers_and_offers_no_action(
    client: FlaskClient, case: tuple[Request, Doctor, User]
) -> None:
    request, _, _ = case
    before = _page(client, f"/espace/demandes/{request.id}")
    actions = ("Solliciter les médecins cochés", "Envoyer la proposition", "Clôturer la demande",
               "Marquer comme orientée", "Corriger le point")  # fmt: skip
    assert all(label in before for label in actions)
    _limit(client, request)
    page = _page(client, f"/espace/demandes/{request.id}")
    today = in_paris(utcnow()).strftime("%d/%m/%Y")  # the page writes the Paris day
    assert f"Traitement limité depuis le {today} (demande du patient)" in page
    assert not any(label in page for label in actions)
    assert "data-patient-move-url" not in page  # the map's marker cannot be dragged
    assert "Jeanne Martin" in page and "jeanne@example.org" in page  # the answers
    assert "Traitement limité (demande du patient)" in page  # the timeline's event
    assert f'href="/espace/droits/{request.id}"' in page  # where to lift it


def test_the_queue_tags_a_limited_request(
    client: FlaskClient,
    case: tuple[Request, Doctor, User],
    make_request: Callable[..., Request],
    session: Session,
) -> None:
    request, _, _ = case
    other = make_request(session.get(Territory, request.territory_id), Status.ELIGIBLE)
    _limit(client, request)
    page = _page(client, "/espace/demandes")
    rows = {ref: row for row in page.split("<tr") for ref in (request.reference, other.reference)
            if ref in row}  # fmt: skip
    assert "traitement limité" in rows[request.reference]
    assert "traitement limité" not in rows[other.reference]


def test_limiting_stops_a_running_cascade_and_cancels_the_open_asks(
    session: Session,
    client: FlaskClient,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    request = make_request(territory, lat=50.688, lon=2.88)
    nearest = make_doctor(territory, email="a@example.org", lat=50.689, lon=2.881)
    make_doctor(territory, email="b@example.org", lat=50.70, lon=2.90)
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    user = make_user(territory)
    start_cascade(session, territory, request, links=LINKS, now=monday, user_id=user.id)
    session.commit()
    (asked,) = session.scalars(select(DoctorContact)).all()
    assert asked.doctor_id == nearest.id
    process_rights_request(session, request, RightKind.LIMITATION, monday, user_id=user.id)
    session.commit()

    summary = advance_cascades(session, monday + timedelta(days=14), LINKS)
    session.commit()
    assert summary.asked == 0
    contacts = session.scalars(select(DoctorContact)).all()
    assert [(c.doctor_id, c.status) for c in contacts] == [(nearest.id, ContactStatus.CANCELLED)]
    session.refresh(request)
    assert request.cascade_state == "done"
    # The ask queued a moment before the limitation is not sent.
    (message,) = session.scalars(select(Message)).all()
    assert message.status is MessageStatus.FAILED
    assert "traitement limité" in message.last_error
    # The doctor's link no longer takes an answer: no place reserved for the patient.
    token = LINKS.doctor_answer(asked.id, "accept").removeprefix("http://localhost")
    response = client.post(token, data={"answer": "accept"})
    assert "Cette demande n'attend plus de réponse" in html.unescape(response.get_data(True))
    session.expire_all()
    assert session.get(Doctor, nearest.id).capacity_left == 3  # type: ignore[union-attr]


def test_no_follow_up_and_no_survey_go_to_a_limited_request(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    user = make_user(territory)
    proposed = make_request(territory, Status.ELIGIBLE)
    change_status(proposed, Status.PROPOSED, now=utcnow() - timedelta(days=40))
    oriented = make_request(
        territory, Status.ORIENTED, closed_at=datetime(2026, 5, 1, tzinfo=UTC),
        agrees_to_survey=True,
    )  # fmt: skip
    for request in (proposed, oriented):
        process_rights_request(session, request, RightKind.LIMITATION, utcnow(), user_id=user.id)
    session.commit()
    assert send_follow_ups(session, SIGNER, "http://localhost", utcnow()) == 0
    assert send_surveys(session, SIGNER, "http://localhost", 2026, utcnow()) == 0
    assert _outbox(session) == 0
    # Once lifted, the follow-up is due again (the survey too).
    process_rights_request(
        session, proposed, RightKind.LIMITATION_LIFTED, utcnow(), user_id=user.id
    )
    session.commit()
    assert send_follow_ups(session, SIGNER, "http://localhost", utcnow()) == 1


def test_a_follow_up_link_sent_before_the_limitation_changes_nothing(
    session: Session,
    client: FlaskClient,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    user = make_user(territory)
    request = make_request(territory, Status.ELIGIBLE)
    change_status(request, Status.PROPOSED, now=utcnow() - timedelta(days=40))
    session.commit()
    assert send_follow_ups(session, SIGNER, "http://localhost", utcnow()) == 1
    body = session.scalars(select(Message.body)).one()
    link = re.search(r"http://localhost(/suivi/rendez-vous/\S+)", body).group(1)  # type: ignore[union-attr]
    process_rights_request(session, request, RightKind.LIMITATION, utcnow(), user_id=user.id)
    session.commit()
    response = client.post(link, data={"appointment": "oui", "declared": "oui"})
    assert response.status_code == 409
    assert "Votre demande est en pause" in html.unescape(response.get_data(as_text=True))
    session.expire_all()
    assert request.status is Status.PROPOSED
    assert request.follow_up_answered_at is None


def test_lifting_the_limitation_from_the_rights_desk_makes_the_request_workable_again(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor, User]
) -> None:
    request, doctor, user = case
    assert "Lever la limitation" not in _page(client, f"/espace/droits/{request.id}")
    _limit(client, request)
    desk = _page(client, f"/espace/droits/{request.id}")
    assert "Lever la limitation" in desk
    response = client.post(f"/espace/droits/{request.id}", data={"kind": "limitation_lifted"})
    assert response.status_code == 302
    session.expire_all()
    assert request.processing_limited_at is None
    assert [e.kind for e in request.events][-2:] == [
        "limitation_lifted",
        "rights_limitation_lifted",
    ]
    entry = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "rights.limitation_lifted")
    )
    assert entry is not None and entry.user_id == user.id
    assert entry.object_id == str(request.id)
    assert "Traitement limité depuis" not in _page(client, f"/espace/demandes/{request.id}")

    client.post(
        f"/espace/demandes/{request.id}/solliciter",
        data={"mode": "chosen", "doctor_ids": [str(doctor.id)]},
    )
    contacts = session.scalars(select(DoctorContact)).all()
    assert [c.doctor_id for c in contacts] == [doctor.id]
    assert session.scalars(select(Message.purpose)).all() == ["doctor_request"]


def _patient_link(app: Flask, request: Request) -> str:
    secret = app.extensions["orientation.settings"].secret_key
    return LinkSigner(secret).make(LinkPurpose.PATIENT_REQUEST, request.id)


def test_the_patient_still_withdraws_but_cannot_confirm_a_limited_request(
    app: Flask, client: FlaskClient, session: Session, case: tuple[Request, Doctor, User]
) -> None:
    request, _, _ = case
    _limit(client, request)
    token = _patient_link(app, request)
    page = _page(client, f"/suivi/{token}")
    assert "Vous avez demandé de limiter le traitement de votre demande" in page
    response = client.post(f"/suivi/{token}/confirmer")
    assert response.status_code == 409
    assert "Rien à confirmer pour l'instant" in html.unescape(response.get_data(as_text=True))
    session.expire_all()
    assert request.status is Status.PROPOSED
    client.post(f"/suivi/{token}/retirer", data={"confirm": "on"})
    session.expire_all()
    assert request.status is Status.WITHDRAWN
    withdrawn = session.scalars(
        select(RequestEvent).where(RequestEvent.to_status == Status.WITHDRAWN.value)
    ).one()
    assert withdrawn.actor_label == "patient"


def test_an_erasure_stays_possible(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    user = make_user(territory)
    request = make_request(territory, Status.IN_PROGRESS)
    process_rights_request(session, request, RightKind.LIMITATION, utcnow(), user_id=user.id)
    process_rights_request(session, request, RightKind.ERASURE, utcnow(), user_id=user.id)
    session.commit()
    session.refresh(request)
    assert request.status is Status.WITHDRAWN
    assert request.anonymised_at is not None
    assert [p.last_name for p in request.persons] == [""]


def test_a_limited_request_is_not_forwarded_to_another_cpts(
    app: Flask,
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_user: Callable[..., User],
) -> None:
    here = make_territory()
    lille = make_territory("CPTS Grand Lille", ["59350"])
    request = make_request(
        here, Status.OUT_OF_TERRITORY, postal_code="59000", commune_insee="59350"
    )
    token = _patient_link(app, request)
    forward = f"/suivi/{token}/transmettre/{lille.slug}"
    assert forward in _page(client, f"/suivi/{token}")
    process_rights_request(
        session, request, RightKind.LIMITATION, utcnow(), user_id=make_user(here).id
    )
    session.commit()
    assert forward not in _page(client, f"/suivi/{token}")
    response = client.post(forward, follow_redirects=True)
    assert "Votre demande n'a pas été transmise" in html.unescape(response.get_data(True))
    session.expire_all()
    assert request.status is Status.OUT_OF_TERRITORY
    assert session.scalars(select(Request.territory_id)).all() == [here.id]


def test_a_withheld_message_cannot_be_sent_again_from_the_outbox(
    client: FlaskClient, session: Session, case: tuple[Request, Doctor, User]
) -> None:
    request, doctor, _ = case
    client.post(
        f"/espace/demandes/{request.id}/proposition",
        data={"mode": "send", "channels": ["sms"], "sms_body": "Dr Dupont, 03 20 00 00 01.",
              "doctor_ids": [str(doctor.id)]},
    )  # fmt: skip
    message = session.scalars(select(Message)).one()
    assert message.status is MessageStatus.QUEUED  # not yet taken by the dispatcher
    _limit(client, request)
    session.refresh(message)
    assert message.status is MessageStatus.FAILED
    outbox = client.get("/espace/messages").get_data(as_text=True)
    assert f"/espace/messages/{message.id}/renvoyer" not in outbox  # not offered
    response = client.post(f"/espace/messages/{message.id}/renvoyer", follow_redirects=True)
    assert REFUSED in html.unescape(response.get_data(as_text=True))
    session.refresh(message)
    assert message.status is MessageStatus.FAILED
