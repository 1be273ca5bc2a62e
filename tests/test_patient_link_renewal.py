"""A new private link from the rights desk: the old one opens nothing, the new one goes to the
person by SMS or e-mail (or is shown once to read out), once per press of the button."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from models import (
    AuditEntry,
    Channel,
    Message,
    MessageStatus,
    Request,
    RequestEvent,
    Role,
    Status,
    Territory,
    User,
)
from notifications.outbox import queue_message
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.doctor_contacts import Links
from orientation.services.request_case import EVENT_LABELS
from orientation.services.rights_erasure import anonymise_request
from tests.conftest import AuthActions
from tests.test_intake import answers

MakeRequest = Callable[..., Request]
BUTTON = "Envoyer un nouveau lien privé (l'ancien ne fonctionnera plus)"
LINK = re.compile(r"/suivi/([A-Za-z0-9_.-]+)")


@pytest.fixture
def desk(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> tuple[FlaskClient, Territory, User]:
    """A coordinator logged in at the rights desk of their CPTS."""
    territory = make_territory()
    user = make_user(territory)
    auth.login(user)
    return client, territory, user


@pytest.fixture
def patient(app: Flask) -> FlaskClient:
    """The person's own browser (or whoever has their link): not logged in."""
    return app.test_client()


def _signer(app: Flask) -> LinkSigner:
    return LinkSigner(app.extensions["orientation.settings"].secret_key)


def _old_link(app: Flask, request: Request) -> str:
    """The link the person was given at first (the acknowledgement's)."""
    return _signer(app).make(LinkPurpose.PATIENT_REQUEST, request.id)


def _text(response: object) -> str:
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


def _shown_version(page: str) -> str:
    """The link version the rights page's button carries."""
    found = re.search(r'<input[^>]*name="shown_version"[^>]*value="(\d+)"', page)
    assert found is not None
    return found.group(1)


def _renew(
    client: FlaskClient, request: Request, shown_version: int = 0, confirm: bool = True
) -> TestResponse:
    data = {"shown_version": str(shown_version)}
    if confirm:
        data["confirm"] = "y"
    return client.post(f"/espace/droits/{request.id}/nouveau-lien", data=data)


def _messages(session: Session, request: Request, purpose: str = "link_renewed") -> list[Message]:
    session.expire_all()
    return list(
        session.scalars(
            select(Message).where(Message.request_id == request.id, Message.purpose == purpose)
        )
    )


def _reloaded(session: Session, request: Request) -> Request:
    session.expire_all()
    found = session.get(Request, request.id)
    assert found is not None
    return found


def test_the_rights_page_offers_the_button_with_a_confirmation_tick(
    desk: tuple[FlaskClient, Territory, User], make_request: MakeRequest
) -> None:
    client, territory, _ = desk
    request = make_request(territory)
    page = _text(client.get(f"/espace/droits/{request.id}"))
    assert BUTTON in page
    assert _shown_version(page) == "0"
    assert "Je confirme : l'ancien lien privé de la personne ne fonctionnera plus." in page
    assert "Il part par SMS." in page


def test_after_renewal_the_old_link_is_invalid_and_the_new_one_sent_by_sms_opens_the_request(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    patient: FlaskClient,
    session: Session,
    make_request: MakeRequest,
) -> None:
    client, territory, user = desk
    request = make_request(territory)  # a mobile, SMS preferred
    old = _old_link(app, request)
    assert patient.get(f"/suivi/{old}").status_code == 200

    done = _renew(client, request)
    assert done.status_code == 303
    notice = _text(client.get(done.headers["Location"]))
    assert "Nouveau lien privé envoyé par SMS au portable de la demande" in notice

    # The old link: the invalid-link page, on every page of the link and on the API.
    refused = patient.get(f"/suivi/{old}")
    assert refused.status_code == 404 and "Page introuvable" in _text(refused)
    assert request.reference not in _text(refused)
    assert patient.get(f"/suivi/{old}/donnees.json").status_code == 404
    assert patient.post(f"/suivi/{old}/retirer", data={"confirm": "y"}).status_code == 404
    api = patient.get(f"/api/v1/requests/{old}")
    assert (api.status_code, api.get_json()) == (404, {"errors": {"token": "Lien inconnu."}})

    # The new link, as the person receives it.
    (message,) = _messages(session, request)
    assert (message.channel, message.recipient) == (Channel.SMS, "+33612345678")
    assert message.status is MessageStatus.QUEUED
    assert "l'ancien ne fonctionne plus" in message.body and request.reference in message.body
    match = LINK.search(message.body)
    assert match is not None
    new = match.group(1)
    opened = patient.get(f"/suivi/{new}")
    assert opened.status_code == 200 and request.reference in _text(opened)
    assert patient.get(f"/api/v1/requests/{new}").get_json()["reference"] == request.reference
    assert _reloaded(session, request).status is request.status  # nothing else changed


def test_the_renewal_is_recorded_in_the_timeline_and_the_audit_trail_without_the_link(
    desk: tuple[FlaskClient, Territory, User], session: Session, make_request: MakeRequest
) -> None:
    client, territory, user = desk
    request = make_request(territory)
    _renew(client, request)
    event = session.scalars(
        select(RequestEvent).where(
            RequestEvent.request_id == request.id, RequestEvent.kind == "link_renewed"
        )
    ).one()
    assert event.actor_user_id == user.id and event.note == "envoyé par SMS"
    label = EVENT_LABELS["link_renewed"]
    assert label == "Nouveau lien privé envoyé, l'ancien ne fonctionne plus"
    assert label in _text(client.get(f"/espace/demandes/{request.id}"))
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "request.link_renewed")
    ).one()
    assert (entry.user_id, entry.object_id, entry.territory_id) == (
        user.id,
        str(request.id),
        territory.id,
    )
    assert entry.details == {"channel": "sms"}
    assert "/suivi/" not in event.note


def test_the_new_link_goes_by_e_mail_when_the_person_prefers_it(
    desk: tuple[FlaskClient, Territory, User], session: Session, make_request: MakeRequest
) -> None:
    client, territory, _ = desk
    request = make_request(territory, email="jeanne@example.org", preferred_channel="email")
    assert "Il part par e-mail." in client.get(f"/espace/droits/{request.id}").get_data(
        as_text=True
    )
    done = _renew(client, request)
    assert "envoyé par e-mail à l'adresse de la demande" in _text(
        client.get(done.headers["Location"])
    )
    (message,) = _messages(session, request)
    assert (message.channel, message.recipient) == (Channel.EMAIL, "jeanne@example.org")
    assert message.subject == f"Votre nouveau lien privé ({request.reference})"


def test_a_landline_and_an_e_mail_get_the_e_mail_never_an_sms_to_the_landline(
    desk: tuple[FlaskClient, Territory, User], session: Session, make_request: MakeRequest
) -> None:
    client, territory, _ = desk
    request = make_request(territory, phone="+33320123456", email="jeanne@example.org")
    _renew(client, request)
    (message,) = _messages(session, request)
    assert (message.channel, message.recipient) == (Channel.EMAIL, "jeanne@example.org")


def test_with_only_a_landline_the_new_link_is_shown_once_to_read_out(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    patient: FlaskClient,
    session: Session,
    make_request: MakeRequest,
) -> None:
    client, territory, _ = desk
    request = make_request(territory, phone="+33320123456", preferred_channel="phone")
    old = _old_link(app, request)
    assert "aucun message (ni portable ni e-mail)" in _text(
        client.get(f"/espace/droits/{request.id}")
    )
    shown = _renew(client, request)
    assert shown.status_code == 200
    page = _text(shown)
    assert "Ni portable ni e-mail : aucun message ne peut lui être envoyé." in page
    match = LINK.search(page)
    assert match is not None
    assert patient.get(f"/suivi/{match.group(1)}").status_code == 200
    assert patient.get(f"/suivi/{old}").status_code == 404  # revoked all the same
    assert _messages(session, request) == []
    # Shown once: the rights page and the address of the button do not show it again.
    again = client.get(f"/espace/droits/{request.id}/nouveau-lien", follow_redirects=True)
    assert match.group(1) not in again.get_data(as_text=True)
    event = session.scalars(select(RequestEvent).where(RequestEvent.kind == "link_renewed")).one()
    assert event.note == "ni portable ni e-mail : lien donné par la coordination"


def test_pressing_the_button_twice_sends_one_link(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    patient: FlaskClient,
    session: Session,
    make_request: MakeRequest,
) -> None:
    client, territory, _ = desk
    request = make_request(territory)
    _renew(client, request, shown_version=0)
    second = _renew(client, request, shown_version=0)  # the same page posted again
    assert "a déjà été envoyé depuis l'affichage de cette page" in _text(
        client.get(second.headers["Location"])
    )
    (message,) = _messages(session, request)
    assert _reloaded(session, request).link_version == 1
    match = LINK.search(message.body)
    assert match is not None
    assert patient.get(f"/suivi/{match.group(1)}").status_code == 200  # still the good one
    # The page shown again carries the new version: a second renewal is possible, and the
    # link of the first one stops working in turn.
    assert _shown_version(_text(client.get(f"/espace/droits/{request.id}"))) == "1"
    _renew(client, request, shown_version=1)
    assert patient.get(f"/suivi/{match.group(1)}").status_code == 404
    assert len(_messages(session, request)) == 2


def test_without_the_tick_nothing_changes(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    patient: FlaskClient,
    session: Session,
    make_request: MakeRequest,
) -> None:
    client, territory, _ = desk
    request = make_request(territory)
    done = _renew(client, request, confirm=False)
    assert "Cochez la confirmation : l'ancien lien ne fonctionnera plus." in _text(
        client.get(done.headers["Location"])
    )
    assert patient.get(f"/suivi/{_old_link(app, request)}").status_code == 200
    assert _messages(session, request) == []


def test_another_cpts_coordinator_gets_a_404_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    patient: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    mine, other = make_territory(), make_territory()
    request = make_request(mine)
    auth.login(make_user(other))
    assert _renew(client, request).status_code == 404
    assert patient.get(f"/suivi/{_old_link(app, request)}").status_code == 200
    assert _messages(session, request) == []
    assert _reloaded(session, request).link_version == 0


def test_a_referrer_cannot_renew_a_link(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    patient: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    territory = make_territory()
    request = make_request(territory)
    auth.login(make_user(territory, Role.REFERRER))
    assert _renew(client, request).status_code in (403, 404)
    assert patient.get(f"/suivi/{_old_link(app, request)}").status_code == 200


def test_an_erased_request_is_refused_with_the_reason(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    session: Session,
    make_request: MakeRequest,
) -> None:
    client, territory, _ = desk
    request = make_request(territory)
    anonymise_request(session, request, datetime(2026, 3, 2, 10, tzinfo=UTC), reason="test")
    session.commit()
    assert BUTTON not in _text(client.get(f"/espace/droits/{request.id}"))
    done = _renew(client, request)
    notice = _text(client.get(done.headers["Location"]))
    assert "Pas de nouveau lien : cette demande a été effacée le 02/03/2026" in notice
    assert _messages(session, request) == []
    assert _reloaded(session, request).link_version == 0


def test_a_limited_request_is_refused_because_nothing_may_be_sent(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    patient: FlaskClient,
    session: Session,
    make_request: MakeRequest,
) -> None:
    client, territory, _ = desk
    request = make_request(territory, processing_limited_at=datetime(2026, 3, 2, 10, tzinfo=UTC))
    page = _text(client.get(f"/espace/droits/{request.id}"))
    assert "Pas de nouveau lien tant que le traitement est limité" in page
    done = _renew(client, request)
    notice = _text(client.get(done.headers["Location"]))
    assert "le traitement de cette demande est limité depuis le 02/03/2026" in notice
    assert "aucun message ne peut lui être envoyé" in notice
    assert _messages(session, request) == []
    assert patient.get(f"/suivi/{_old_link(app, request)}").status_code == 200


def test_a_waiting_acknowledgement_with_the_old_link_is_not_sent_any_more(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    session: Session,
    make_request: MakeRequest,
) -> None:
    client, territory, _ = desk
    request = make_request(territory)
    queue_message(
        session, territory_id=territory.id, channel=Channel.SMS, recipient=request.phone,
        body=f"Suivre : http://localhost/suivi/{_old_link(app, request)}",
        purpose="acknowledgement", idempotency_key=f"acknowledgement:{request.reference}",
        request_id=request.id,
    )  # fmt: skip
    session.commit()
    _renew(client, request)
    (acknowledgement,) = _messages(session, request, "acknowledgement")
    assert acknowledgement.status is MessageStatus.FAILED
    assert "un nouveau lien privé a été envoyé depuis" in acknowledgement.last_error


def test_links_made_after_the_renewal_carry_the_new_version(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    patient: FlaskClient,
    session: Session,
    make_request: MakeRequest,
) -> None:
    """The proposal's link to the request (made when the coordinator proposes doctors)."""
    client, territory, _ = desk
    request = make_request(territory)
    _renew(client, request)
    follow_url = Links(_signer(app), "http://localhost").patient_follow(_reloaded(session, request))
    assert patient.get(follow_url.removeprefix("http://localhost")).status_code == 200


def test_sending_the_questionnaire_again_does_not_hand_out_the_new_link(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    patient: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    """On a shared phone, the back button and the form sent again (same nonce) give the link
    that submission made, which opens nothing once renewed."""
    territory = make_territory("CPTS Lys", ["59017", "59431", "59143"])
    form = answers(nonce="shared-phone")
    first = patient.post(f"/cpts/{territory.slug}/demande", data=form)
    assert first.status_code == 303
    request = session.scalars(select(Request)).one()
    auth.login(make_user(territory))
    _renew(client, request)
    replay = patient.post(f"/cpts/{territory.slug}/demande", data=form)
    token = replay.headers["Location"].split("/")[2]
    claims = _signer(app).read(LinkPurpose.PATIENT_REQUEST, token)
    assert (claims.subject_id, claims.version) == (request.id, 0)  # the first link
    assert patient.get(replay.headers["Location"]).status_code == 404


def test_the_old_link_cannot_confirm_a_proposal(
    app: Flask,
    desk: tuple[FlaskClient, Territory, User],
    patient: FlaskClient,
    session: Session,
    make_request: MakeRequest,
) -> None:
    client, territory, _ = desk
    request = make_request(territory, Status.PROPOSED)
    old = _old_link(app, request)
    _renew(client, request)
    assert patient.post(f"/suivi/{old}/confirmer").status_code == 404
    assert _reloaded(session, request).status is Status.PROPOSED
