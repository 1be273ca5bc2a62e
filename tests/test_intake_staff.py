"""The phone line (coordinator) and the referral form (professionals) use the same questionnaire."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Message,
    MessageStatus,
    Request,
    RequestEvent,
    Role,
    Source,
    Status,
    Territory,
    User,
)
from tests.conftest import AuthActions
from tests.test_intake import answers


def test_a_coordinator_records_a_request_on_the_phone(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    territory = make_territory("CPTS Lys", ["59017"])
    user = make_user(territory, Role.COORDINATOR)
    auth.login(user)
    assert "une demande au téléphone</h1>" in client.get("/espace/saisie").get_data(as_text=True)
    response = client.post("/espace/saisie", data=answers(nonce="p1"))
    request = session.scalars(select(Request)).one()
    assert request.reference in response.get_data(as_text=True)
    assert request.source is Source.PHONE and request.referrer_id is None
    submitted = session.scalars(select(RequestEvent).where(RequestEvent.kind == "submitted")).one()
    assert submitted.actor_user_id == user.id


def test_a_referrer_registers_a_patient_who_agreed(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    territory = make_territory("CPTS Lys", ["59017"])
    pharmacist = make_user(territory, Role.REFERRER)
    auth.login(pharmacist)
    refused = client.post("/orienter", data=answers(consent=None))
    assert refused.status_code == 422
    assert "L&#39;accord du patient est nécessaire" in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Request)) == 0
    client.post("/orienter", data=answers(nonce="r1"))
    request = session.scalars(select(Request)).one()
    assert request.source is Source.PROFESSIONAL and request.referrer_id == pharmacist.id
    assert request.territory_id == territory.id


def test_a_referrer_cannot_use_the_phone_line_and_visitors_must_log_in(
    client: FlaskClient, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    assert client.get("/orienter").status_code == 302
    auth.login(make_user(make_territory(), Role.REFERRER))
    assert client.get("/espace/saisie").status_code == 403
    assert client.get("/orienter").status_code == 200


# --- out of territory at the phone line or the counter: never a dead end ------------------


def _forward_button(page: str) -> str:
    found = re.search(r'<form method="post" action="(/orienter/\d+/transmettre/[^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_call_from_a_commune_of_another_hosted_cpts_is_forwarded_there_once(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    lys = make_territory("CPTS Lys", ["59017"])
    lille = make_territory("CPTS Grand Lille", ["59350"])
    coordinator = make_user(lys, Role.COORDINATOR)
    auth.login(coordinator)
    page = client.post(
        "/espace/saisie", data=answers(nonce="call-7", postal_code="59000", commune="Lille")
    ).get_data(as_text=True)
    assert "Hors du territoire de CPTS Lys" in page
    assert "CPTS Grand Lille couvre Lille" in page and lille.contact_phone in page
    assert "Elle reçoit par SMS son lien privé" in page
    assert "/suivi/" not in page  # the link goes to the person alone
    button = _forward_button(page)
    assert button.endswith(f"/transmettre/{lille.slug}")

    forwarded = client.post(button)
    assert forwarded.status_code == 200
    assert "Demande transmise à CPTS Grand Lille" in forwarded.get_data(as_text=True)
    assert client.post(button).status_code == 200  # a second click: the same copy
    original, copy = session.scalars(select(Request).order_by(Request.id)).all()
    assert (original.territory_id, original.status) == (lys.id, Status.CLOSED)
    assert original.closed_reason == "transmise à CPTS Grand Lille"
    assert (copy.territory_id, copy.status, copy.source) == (
        lille.id,
        Status.ELIGIBLE,
        Source.PHONE,
    )
    assert copy.reference in forwarded.get_data(as_text=True)
    closing = session.scalars(
        select(RequestEvent).where(RequestEvent.request_id == original.id,
                                   RequestEvent.to_status == Status.CLOSED.value)
    ).one()  # fmt: skip
    assert closing.actor_user_id == coordinator.id
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "request.forwarded")
    ).one()
    assert (entry.user_id, entry.object_id) == (coordinator.id, str(original.id))
    # The copy's acknowledgement goes out in the other CPTS's name.
    acknowledgements = session.scalars(select(Message).where(Message.request_id == copy.id)).all()
    assert [m.body.startswith("CPTS Grand Lille") for m in acknowledgements] == [True]
    # The person is told once: this CPTS's acknowledgement, still waiting, is not sent, and
    # the outbox will not send it again either.
    (withheld,) = session.scalars(select(Message).where(Message.request_id == original.id))
    session.refresh(withheld)
    assert withheld.status is MessageStatus.FAILED
    assert withheld.last_error.startswith("Non envoyé : la demande a été transmise")
    outbox = client.get("/espace/messages").get_data(as_text=True)
    assert "la demande a été transmise" in outbox
    assert f"/espace/messages/{withheld.id}/renvoyer" not in outbox  # not offered
    retried = client.post(f"/espace/messages/{withheld.id}/renvoyer", follow_redirects=True)
    assert "son accusé de réception remplace celui-ci" in retried.get_data(as_text=True)
    session.refresh(withheld)
    assert withheld.status is MessageStatus.FAILED


def test_an_acknowledgement_already_sent_stays_sent_when_the_request_is_forwarded(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    lys = make_territory("CPTS Lys", ["59017"])
    lille = make_territory("CPTS Grand Lille", ["59350"])
    auth.login(make_user(lys, Role.COORDINATOR))
    page = client.post(
        "/espace/saisie", data=answers(nonce="call-9", postal_code="59000", commune="Lille")
    ).get_data(as_text=True)
    sent = session.scalars(select(Message)).one()
    sent.status = MessageStatus.SENT  # the dispatcher was quicker than the forwarding
    session.commit()
    client.post(_forward_button(page))
    session.refresh(sent)
    assert sent.status is MessageStatus.SENT and sent.last_error == ""
    assert len(session.scalars(select(Message).where(Message.territory_id == lille.id)).all()) == 1


def test_without_a_hosted_cpts_the_counter_is_told_to_send_the_patient_to_the_cpam(
    client: FlaskClient, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    auth.login(make_user(make_territory("CPTS Lys", ["59017"]), Role.REFERRER))
    page = client.post(
        "/orienter", data=answers(nonce="r-5", postal_code="59000", commune="Lille")
    ).get_data(as_text=True)
    assert "Hors du territoire de CPTS Lys" in page and "ameli.fr" in page and "3646" in page
    assert "/transmettre/" not in page
    assert "Ouvrir la demande" not in page  # the case page is the coordination's


def test_a_landline_only_person_is_given_the_reference_since_no_message_can_reach_them(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    auth.login(make_user(make_territory("CPTS Lys", ["59017"]), Role.COORDINATOR))
    page = client.post(
        "/espace/saisie",
        data=answers(nonce="call-8", phone="03 20 12 34 56", preferred_channel="phone"),
    ).get_data(as_text=True)
    assert "Ni portable ni e-mail : aucun message ne lui est envoyé" in page
    assert '<p class="private-link">http://localhost/suivi/' in page  # no other way to them
    assert session.scalar(select(func.count()).select_from(Message)) == 0
    request = session.scalars(select(Request)).one()
    assert f'href="/espace/demandes/{request.id}"' in page  # "Ouvrir la demande"


def test_only_the_referrer_forwards_and_only_to_a_cpts_that_covers_the_commune(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    lys = make_territory("CPTS Lys", ["59017"])
    lille = make_territory("CPTS Grand Lille", ["59350"])
    roubaix = make_territory("CPTS Roubaix", ["59512"])
    first = make_user(lys, Role.REFERRER)
    auth.login(first)
    page = client.post(
        "/orienter", data=answers(nonce="r-6", postal_code="59000", commune="Lille")
    ).get_data(as_text=True)
    button = _forward_button(page)
    request_id = session.scalars(select(Request)).one().id
    assert client.post(f"/orienter/{request_id}/transmettre/{roubaix.slug}").status_code == 404
    auth.logout()
    auth.login(make_user(lys, Role.REFERRER))  # another pharmacist of the same CPTS
    assert client.post(button).status_code == 404
    auth.logout()
    auth.login(make_user(lille, Role.COORDINATOR))  # the other CPTS cannot reach it either
    assert client.post(button).status_code == 404
    eligible = client.post(
        "/espace/saisie", data=answers(nonce="call-9", postal_code="59000", commune="Lille")
    )
    assert eligible.status_code == 200  # in Grand Lille's territory: nothing to forward
    eligible_id = session.scalars(select(Request).where(Request.territory_id == lille.id)).one().id
    assert client.post(f"/orienter/{eligible_id}/transmettre/{lys.slug}").status_code == 404
    assert session.scalar(select(func.count()).select_from(Request)) == 2
