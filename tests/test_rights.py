"""Patients' rights: access (JSON copy), rectification, erasure (anonymisation), limitation."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Channel, Message, Request, Role, Status, Territory, User, utcnow
from notifications.outbox import queue_message
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.rights_access import export_request_data
from orientation.services.rights_erasure import anonymise_request
from orientation.services.rights_rectification import (
    Correction,
    InvalidCorrection,
    correct_request,
)
from orientation.services.workflow import change_status
from tests.conftest import AuthActions

MakeRequest = Callable[..., Request]


def _household(session: Session, territory: Territory, make_request: MakeRequest) -> Request:
    request = make_request(
        territory,
        Status.IN_PROGRESS,
        persons=[("Jeanne", "Martin", date(1950, 5, 4)), ("Léo", "Martin", date(2022, 3, 1))],
        email="jeanne.martin@example.org",
        street="12 rue des Lilas",
        comment="Appeler après 18 h, porte bleue",
        reason_detail="Mon médecin part à la retraite",
        need_home_visits=True,
        is_priority=True,
        lat=50.688,
        lon=2.881,
    )
    queue_message(
        session,
        territory_id=territory.id,
        channel=Channel.SMS,
        recipient="+33612345678",
        body="Bonjour Jeanne Martin, votre demande est bien reçue.",
        purpose="acknowledgement",
        idempotency_key=f"ack-{request.id}",
        request_id=request.id,
    )
    change_status(request, Status.DOCTORS_CONTACTED, now=utcnow(), note="Dr X appelé pour Jeanne")
    session.commit()
    return request


def _link(app: Flask, request: Request, purpose: LinkPurpose = LinkPurpose.PATIENT_REQUEST) -> str:
    return LinkSigner(app.extensions["orientation.settings"].secret_key).make(purpose, request.id)


def test_the_export_holds_the_request_persons_events_and_messages(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    request = _household(session, make_territory(), make_request)
    data = export_request_data(session, request)
    assert data["request"]["email"] == "jeanne.martin@example.org"
    assert data["request"]["comment"] == "Appeler après 18 h, porte bleue"
    assert [p["first_name"] for p in data["persons"]] == ["Jeanne", "Léo"]
    assert data["persons"][0]["birth_date"] == "1950-05-04"
    assert data["events"][-1]["note"] == "Dr X appelé pour Jeanne"
    assert data["messages"][0]["body"].startswith("Bonjour Jeanne Martin")
    json.dumps(data)  # everything is JSON-ready


def test_a_patient_downloads_their_data_as_json_through_their_link_and_it_is_audited(
    app: Flask,
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
) -> None:
    request = _household(session, make_territory(), make_request)
    response = client.get(f"/suivi/{_link(app, request)}/donnees.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json()["persons"][1]["first_name"] == "Léo"
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "rights.access"))
    assert entry is not None and entry.actor_label == "patient"
    assert entry.object_id == str(request.id)


@pytest.mark.parametrize(
    "purpose", [p for p in LinkPurpose if p is not LinkPurpose.PATIENT_REQUEST]
)
def test_a_link_made_for_another_purpose_opens_nothing(
    app: Flask,
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
    purpose: LinkPurpose,
) -> None:
    request = _household(session, make_territory(), make_request)
    token = _link(app, request, purpose)
    assert client.get(f"/suivi/{token}/donnees.json").status_code == 404
    assert client.get(f"/suivi/{token}/effacer").status_code == 404
    assert client.post(f"/suivi/{token}/effacer", data={"confirm": "y"}).status_code == 404
    assert client.get(f"/suivi/{_link(app, request)}x/donnees.json").status_code == 404


def test_the_erasure_page_explains_in_french_and_needs_a_confirmation(
    app: Flask,
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
) -> None:
    request = _household(session, make_territory(), make_request)
    url = f"/suivi/{_link(app, request)}/effacer"
    page = client.get(url).get_data(as_text=True)
    assert "Effacer mes données" in page and request.reference in page
    assert "<script" not in page
    refused = client.post(url, data={})
    assert refused.status_code == 400
    assert "Cochez la case pour confirmer l&#39;effacement." in refused.get_data(as_text=True)
    session.refresh(request)
    assert request.anonymised_at is None and request.email == "jeanne.martin@example.org"


def test_a_patient_erases_their_request_identity_goes_statistics_stay(
    app: Flask,
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
) -> None:
    request = _household(session, make_territory(), make_request)
    token = _link(app, request)
    created = request.created_at
    response = client.post(f"/suivi/{token}/effacer", data={"confirm": "y"})
    assert response.status_code == 200
    assert "Vos données sont effacées" in response.get_data(as_text=True)
    session.expire_all()
    erased = session.get(Request, request.id)
    assert erased is not None and erased.anonymised_at is not None
    assert erased.status is Status.WITHDRAWN and erased.closed_at is not None
    assert (erased.phone, erased.email, erased.street, erased.comment) == ("", "", "", "")
    assert erased.reason_detail == "" and erased.lat is None
    assert [(p.first_name, p.last_name) for p in erased.persons] == [("", ""), ("", "")]
    assert [p.birth_date for p in erased.persons] == [date(1950, 1, 1), date(2022, 1, 1)]
    assert erased.commune_insee == "59017" and erased.created_at == created
    assert erased.is_priority and erased.need_home_visits
    assert all("Jeanne" not in event.note for event in erased.events)
    message = session.scalar(select(Message).where(Message.request_id == request.id))
    assert message is not None and "Jeanne" not in message.body
    assert message.recipient != "+33612345678" and message.body_purged_at is not None
    # The link is spent: nothing left to show.
    assert client.get(f"/suivi/{token}/donnees.json").status_code == 410
    actions = session.scalars(select(AuditEntry.action)).all()
    assert "rights.erasure" in actions


def test_anonymising_twice_changes_nothing_more(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    request = _household(session, make_territory(), make_request)
    assert anonymise_request(session, request, utcnow(), reason="test") is True
    first = request.anonymised_at
    assert anonymise_request(session, request, utcnow(), reason="test") is False
    assert request.anonymised_at == first


def test_a_correction_with_a_bad_phone_changes_nothing(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    request = _household(session, make_territory(), make_request)
    with pytest.raises(InvalidCorrection) as caught:
        correct_request(session, request, Correction(phone="12", street="1 rue Neuve"), utcnow())
    assert caught.value.field == "phone"
    assert request.street == "12 rue des Lilas"
    changed = correct_request(
        session, request, Correction(phone="06 11 22 33 44", street="1 rue Neuve"), utcnow()
    )
    assert changed == ["phone", "street"]
    assert request.phone == "+33611223344"
    assert request.events[-1].kind == "rectified" and "06" not in request.events[-1].note


def _coordinator_opens(
    client: FlaskClient, auth: AuthActions, user: User, request: Request
) -> FlaskClient:
    auth.login(user)
    found = client.post("/espace/droits", data={"reference": request.reference.lower()})
    assert found.headers["Location"] == f"/espace/droits/{request.id}"
    return client


def test_a_coordinator_finds_a_request_by_reference_and_the_read_is_audited(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    territory = make_territory()
    request = _household(session, territory, make_request)
    coordinator = make_user(territory)
    _coordinator_opens(client, auth, coordinator, request)
    page = client.get(f"/espace/droits/{request.id}").get_data(as_text=True)
    assert "jeanne.martin@example.org" in page and "Léo" in page
    read = session.scalar(select(AuditEntry).where(AuditEntry.action == "request.read"))
    assert read is not None and read.user_id == coordinator.id
    unknown = client.post("/espace/droits", data={"reference": "ZZZZ-ZZZZ"})
    assert "Aucune demande de votre CPTS" in unknown.get_data(as_text=True)


def test_a_coordinator_processes_access_limitation_and_erasure_each_recorded(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    territory = make_territory()
    request = _household(session, territory, make_request)
    _coordinator_opens(client, auth, make_user(territory), request)
    copy = client.get(f"/espace/droits/{request.id}/donnees.json")
    assert copy.get_json()["request"]["reference"] == request.reference
    url = f"/espace/droits/{request.id}"
    assert client.post(url, data={"kind": "limitation", "note": "courrier du 2/11"}).status_code
    without_confirm = client.post(url, data={"kind": "erasure"}, follow_redirects=True)
    assert "Cochez la confirmation" in without_confirm.get_data(as_text=True)
    session.expire_all()
    assert session.get(Request, request.id).anonymised_at is None  # type: ignore[union-attr]
    client.post(url, data={"kind": "erasure", "confirm": "y"})
    session.expire_all()
    done = session.get(Request, request.id)
    assert done is not None and done.processing_limited_at is not None
    assert done.anonymised_at is not None and done.email == ""
    kinds = [event.kind for event in done.events]
    assert {"rights_access", "rights_limitation", "rights_erasure", "limited"} <= set(kinds)
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"rights.access", "rights.limitation", "rights.erasure"} <= actions


def test_a_coordinator_rectifies_contact_details_with_a_clear_error_on_a_bad_phone(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    territory = make_territory()
    request = _household(session, territory, make_request)
    _coordinator_opens(client, auth, make_user(territory), request)
    url = f"/espace/droits/{request.id}/rectifier"
    data = {"phone": "12", "email": "jeanne@example.org", "street": "1 rue Neuve", "best_time": ""}
    bad = client.post(url, data=data)
    assert bad.status_code == 400
    page = bad.get_data(as_text=True)
    assert "Ce numéro de téléphone" in page and 'value="1 rue Neuve"' in page
    good = client.post(url, data={**data, "phone": "06 11 22 33 44"})
    assert good.status_code == 302
    session.expire_all()
    fixed = session.get(Request, request.id)
    assert fixed is not None and (fixed.phone, fixed.email) == (
        "+33611223344",
        "jeanne@example.org",
    )
    assert "rights.rectification" in set(session.scalars(select(AuditEntry.action)))


def test_a_coordinator_of_another_cpts_gets_a_404(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    mine, other = make_territory(), make_territory()
    request = _household(session, other, make_request)
    auth.login(make_user(mine, Role.COORDINATOR))
    assert client.get(f"/espace/droits/{request.id}").status_code == 404
    assert client.get(f"/espace/droits/{request.id}/donnees.json").status_code == 404
    erase = {"kind": "erasure", "confirm": "y"}
    assert client.post(f"/espace/droits/{request.id}", data=erase).status_code == 404
    refused = client.post("/espace/droits", data={"reference": request.reference})
    assert "Aucune demande de votre CPTS" in refused.get_data(as_text=True)
    session.expire_all()
    assert session.get(Request, request.id).anonymised_at is None  # type: ignore[union-attr]


def test_the_private_link_page_offers_the_copy_and_the_erasure(
    client: FlaskClient,
    app: Flask,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
) -> None:
    request = make_request(make_territory())
    token = LinkSigner(app.config["SECRET_KEY"]).make(LinkPurpose.PATIENT_REQUEST, request.id)
    page = client.get(f"/suivi/{token}").get_data(as_text=True)
    assert f"/suivi/{token}/donnees.json" in page
    assert f"/suivi/{token}/effacer" in page
