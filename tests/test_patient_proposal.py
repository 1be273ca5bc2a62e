"""The proposal on the person's private link: what was proposed, confirm it or say it does not
suit; and what the link of an erased request says."""

from __future__ import annotations

import html
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Request, RequestEvent, Status, Territory, utcnow
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.rights_erasure import anonymise_request
from tests.test_proposal import _send, case  # noqa: F401 - the fixture, used by name

SIGNER = LinkSigner("test-secret-" + "x" * 40)


def text_of(response: object) -> str:
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


def link_of(request: Request) -> str:
    return f"/suivi/{SIGNER.make(LinkPurpose.PATIENT_REQUEST, request.id)}"


@pytest.fixture
def patient(app: Flask) -> FlaskClient:
    """The person's own browser: not logged in."""
    return app.test_client()


def test_the_link_shows_the_proposal_sent_and_confirming_it_orients_the_request(
    client: FlaskClient,
    patient: FlaskClient,
    session: Session,
    case: tuple,  # noqa: F811
) -> None:
    request, doctor = case
    link = link_of(request)  # once: a link made a second later has another timestamp
    before = text_of(patient.get(link))
    assert "La proposition de la CPTS" not in before  # nothing proposed yet
    _send(client, request, doctor)
    page = text_of(patient.get(link))
    # The e-mail's text, the fuller of the two, as the person was sent it.
    assert "La proposition de la CPTS" in page
    assert "Bonjour, le Dr Dupont peut vous recevoir." in page
    assert f'action="{link}/confirmer"' in page
    assert "Je confirme : la proposition me convient" in page
    assert "Cette proposition ne me convient pas" in page

    done = patient.post(f"{link}/confirmer")
    assert done.status_code == 200
    assert "Merci, c'est confirmé" in text_of(done)
    assert f'href="{link}"' in text_of(done)  # back to the request
    session.refresh(request)
    assert request.status is Status.ORIENTED
    after = text_of(patient.get(link))
    assert "Bonjour, le Dr Dupont peut vous recevoir." in after  # still there to read again
    assert "Je confirme : ce médecin" not in after and "ne me convient pas</button>" not in after


def test_saying_the_proposal_does_not_suit_sends_it_back_to_the_coordinator_with_the_reason(
    client: FlaskClient,
    patient: FlaskClient,
    session: Session,
    case: tuple,  # noqa: F811
) -> None:
    request, doctor = case
    _send(client, request, doctor)
    done = patient.post(
        f"{link_of(request)}/ne-convient-pas", data={"reason": "Trop loin, je n'ai pas de voiture"}
    )
    assert done.status_code == 303
    page = text_of(patient.get(done.headers["Location"]))
    assert "C'est noté : la coordination reprend votre demande" in page
    assert "Je confirme : la proposition me convient" not in page  # nothing left to confirm
    session.refresh(request)
    assert request.status is Status.IN_PROGRESS
    event = session.scalars(
        select(RequestEvent).where(RequestEvent.kind == "proposal_declined")
    ).one()
    assert event.note == (
        "La proposition ne convient pas à la personne : Trop loin, je n'ai pas de voiture"
    )
    assert event.actor_label == "patient"
    # The coordinator reads it on the request page.
    staff = text_of(client.get(f"/espace/demandes/{request.id}"))
    assert "Trop loin, je n'ai pas de voiture" in staff
    # And in the queue, the row says the proposal is to be made again.
    queue = text_of(client.get("/espace/demandes"))
    row = queue[queue.index(request.reference) :].split("</tr>")[0]
    assert "proposition à refaire" in row
    audited = select(AuditEntry).where(AuditEntry.action == "request.proposal_declined")
    assert session.scalars(audited).one().object_id == str(request.id)


def test_a_reason_too_long_is_refused_on_its_field_and_kept(
    client: FlaskClient,
    patient: FlaskClient,
    session: Session,
    case: tuple,  # noqa: F811
) -> None:
    request, doctor = case
    _send(client, request, doctor)
    long = "Trop loin. " * 100
    refused = patient.post(f"{link_of(request)}/ne-convient-pas", data={"reason": long})
    assert refused.status_code == 422
    page = text_of(refused)
    assert "Ce texte est trop long : 1000 caractères au plus." in page
    assert long.strip() in page
    session.refresh(request)
    assert request.status is Status.PROPOSED


def test_without_a_proposal_out_there_is_nothing_to_decline(
    patient: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
) -> None:
    request = make_request(make_territory(), Status.ELIGIBLE)
    refused = patient.post(f"{link_of(request)}/ne-convient-pas", data={"reason": ""})
    assert refused.status_code == 303
    page = text_of(patient.get(refused.headers["Location"]))
    assert "Il n'y a pas de proposition en attente pour cette demande." in page
    session.refresh(request)
    assert request.status is Status.ELIGIBLE


def test_an_erased_request_s_link_says_so_and_where_to_turn(
    patient: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
) -> None:
    territory = make_territory(name="CPTS Lys")
    territory.contact_phone = "03 20 00 00 00"
    request = make_request(territory, Status.ELIGIBLE)
    link = link_of(request)
    anonymise_request(session, request, utcnow(), reason="retention")
    session.commit()
    for path in (link, f"{link}/donnees.json", f"{link}/effacer"):
        page = patient.get(path)
        assert page.status_code == 410, path
        text = text_of(page)
        assert "Cette demande a été effacée" in text
        assert "Ses données ont été effacées le " in text
        assert f'href="/cpts/{territory.slug}/demande"' in text
        assert "03 20 00 00 00" in text


def test_the_erase_page_leads_back_and_after_erasing_to_a_new_request(
    patient: FlaskClient,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
) -> None:
    territory = make_territory(name="CPTS Lys")
    request = make_request(territory, Status.ELIGIBLE)
    link = link_of(request)
    assert f'href="{link}">Retour à ma demande' in text_of(patient.get(f"{link}/effacer"))
    done = text_of(patient.post(f"{link}/effacer", data={"confirm": "y"}))
    assert "Vos données sont effacées" in done
    assert f'href="/cpts/{territory.slug}/demande"' in done
