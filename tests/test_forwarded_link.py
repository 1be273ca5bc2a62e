"""A forwarded request keeps a link to its copy at the other CPTS: what the person's old link
shows, what neither CPTS's staff can read through it, and what erasure does to it."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Request, RequestEvent, Role, Status, Territory, User
from models.tenancy import scope_to_territory
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.patient_link import forwarded_copy
from orientation.services.retention import purge_territory
from tests.conftest import AuthActions
from tests.test_intake import answers

IN_LILLE = {"postal_code": "59000", "commune": "Lille"}
FOLLOW_THERE = "Suivre ma demande auprès de CPTS Grand Lille"


def text_of(response: object) -> str:
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


@pytest.fixture
def lys(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory("CPTS Lys", ["59017", "59431", "59143"])


@pytest.fixture
def lille(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory("CPTS Grand Lille", ["59350"])


def _signer(app: Flask) -> LinkSigner:
    return LinkSigner(app.extensions["orientation.settings"].secret_key)


def _linked_requests(app: Flask, page: str) -> set[int]:
    """The requests whose private links (/suivi/<token>, signed at rendering) a page gives."""
    tokens = re.findall(r'href="/suivi/([^"/?]+)"', page)
    return {_signer(app).read(LinkPurpose.PATIENT_REQUEST, t).subject_id for t in tokens}


def _forwarded_by_the_person(
    client: FlaskClient, session: Session, lys: Territory, lille: Territory
) -> tuple[str, Request, Request]:
    """A person of Lille asks Lys, then forwards from their link: (old token, original, copy)."""
    location = client.post(f"/cpts/{lys.slug}/demande", data=answers(**IN_LILLE)).headers[
        "Location"
    ]
    token = location.split("/")[2]
    assert client.post(f"/suivi/{token}/transmettre/{lille.slug}").status_code == 303
    original, copy = session.scalars(select(Request).order_by(Request.id)).all()
    return token, original, copy


def test_the_old_link_finds_the_copy_by_the_stored_link_whatever_the_closing_note_says(
    app: Flask, client: FlaskClient, session: Session, lys: Territory, lille: Territory
) -> None:
    token, original, copy = _forwarded_by_the_person(client, session, lys, lille)
    assert (original.forwarded_to_id, copy.forwarded_to_id) == (copy.id, None)
    # The wording of the closing note changes (or a coordinator's tool rewrites it).
    session.execute(
        update(RequestEvent)
        .where(RequestEvent.request_id == original.id, RequestEvent.to_status == "closed")
        .values(note="Demande envoyée à la CPTS Grand Lille")
    )
    session.commit()
    text = text_of(client.get(f"/suivi/{token}"))
    assert "Votre demande a été transmise à CPTS Grand Lille" in text
    assert f"utilisez désormais {copy.reference}, et plus celle-ci" in text
    assert _linked_requests(app, text) == {copy.id}


def test_the_staff_forwarding_links_the_copy_and_a_second_click_keeps_the_same_one(
    client: FlaskClient, session: Session, lys: Territory, lille: Territory,
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    auth.login(make_user(lys, Role.COORDINATOR))
    client.post("/espace/saisie", data=answers(nonce="call-1", **IN_LILLE))
    original = session.scalars(select(Request)).one()
    button = f"/orienter/{original.id}/transmettre/{lille.slug}"
    assert client.post(button).status_code == 200
    assert client.post(button).status_code == 200
    session.expire_all()
    original, copy = session.scalars(select(Request).order_by(Request.id)).all()
    assert original.status is Status.CLOSED and copy.territory_id == lille.id
    assert original.forwarded_to_id == copy.id


def test_a_closing_reason_typed_like_a_forwarding_note_shows_the_person_no_other_request(
    app: Flask, client: FlaskClient, session: Session, lys: Territory, lille: Territory,
    make_request: Callable[..., Request], make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    # Someone else's request at Lille, whose reference a coordinator of Lys types in a reason.
    stranger = make_request(lille, commune_insee="59350", postal_code="59000")
    mine = make_request(lys)
    auth.login(make_user(lys, Role.COORDINATOR))
    reason = f"transmise à CPTS Grand Lille ({stranger.reference})"
    client.post(f"/espace/demandes/{mine.id}/cloture", data={"reason": reason})
    session.refresh(mine)
    assert mine.status is Status.CLOSED and mine.forwarded_to_id is None
    auth.logout()
    token = _signer(app).make(LinkPurpose.PATIENT_REQUEST, mine.id)
    text = text_of(client.get(f"/suivi/{token}"))
    assert "Votre demande a été transmise" not in text and stranger.reference not in text
    assert stranger.id not in _linked_requests(app, text)


def test_neither_cpts_reads_the_other_ones_request_through_the_link(
    app: Flask, client: FlaskClient, session: Session, lys: Territory, lille: Territory,
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    _token, original, copy = _forwarded_by_the_person(client, session, lys, lille)
    # Lille works on its copy; what it writes there is Lille's.
    auth.login(make_user(lille, Role.COORDINATOR))
    client.post(f"/espace/demandes/{copy.id}/cloture", data={"reason": "Note interne de Lille"})
    session.refresh(copy)
    assert copy.closed_reason == "Note interne de Lille"
    assert client.get(f"/espace/demandes/{original.id}").status_code == 404
    auth.logout()
    auth.login(make_user(lys, Role.COORDINATOR))
    page = text_of(client.get(f"/espace/demandes/{original.id}"))
    assert original.reference in page
    assert "Note interne de Lille" not in page
    assert client.get(f"/espace/demandes/{copy.id}").status_code == 404
    # A session scoped to Lys, as a Lys coordinator's is, does not reach the copy by the link;
    # the person's (unscoped) one does.
    scoped = scope_to_territory(Session(session.get_bind()), lys.id)
    try:
        assert forwarded_copy(scoped, scoped.get_one(Request, original.id)) is None
    finally:
        scoped.close()
    assert forwarded_copy(session, original) == copy


def test_erasing_the_copy_keeps_where_it_went_and_erasing_the_original_drops_the_link(
    app: Flask, client: FlaskClient, session: Session, lys: Territory, lille: Territory
) -> None:
    token, original, copy = _forwarded_by_the_person(client, session, lys, lille)
    copy_token = _signer(app).make(LinkPurpose.PATIENT_REQUEST, copy.id)
    assert client.post(f"/suivi/{copy_token}/effacer", data={"confirm": "y"}).status_code == 200
    session.expire_all()
    assert copy.anonymised_at is not None
    # Lys still holds the original (its own retention): the old link says where the request
    # went and its reference, without the link to what is now anonymous.
    assert original.forwarded_to_id == copy.id
    text = text_of(client.get(f"/suivi/{token}"))
    assert f"utilisez désormais {copy.reference}" in text and FOLLOW_THERE not in text
    # Erased too: an anonymised request points at no one's request any more.
    assert client.post(f"/suivi/{token}/effacer", data={"confirm": "y"}).status_code == 200
    session.expire_all()
    assert original.anonymised_at is not None and original.forwarded_to_id is None


def test_retention_anonymising_a_forwarded_request_drops_its_link(
    client: FlaskClient, session: Session, lys: Territory, lille: Territory
) -> None:
    _token, original, copy = _forwarded_by_the_person(client, session, lys, lille)
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 2)
    report = purge_territory(session, session.get_one(Territory, lys.id), later)
    session.commit()
    assert report.closed_anonymised == 1
    session.expire_all()
    assert original.anonymised_at is not None and original.forwarded_to_id is None
    assert copy.anonymised_at is None  # Lille's request: Lille's retention
