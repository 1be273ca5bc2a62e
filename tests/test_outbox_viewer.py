"""Coordinators see their CPTS's messages with status and reason, and retry failed ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Channel,
    Message,
    MessageStatus,
    Request,
    Role,
    Status,
    Territory,
    User,
)
from notifications.outbox import queue_message


def failed_message(session: Session, territory: Territory, key: str = "m-1") -> Message:
    message = queue_message(
        session,
        territory_id=territory.id,
        channel=Channel.SMS,
        recipient="+33612345678",
        body="Le Dr Roux peut vous recevoir le 3 mars.",
        purpose="proposal",
        idempotency_key=key,
    )
    message.status = MessageStatus.FAILED
    message.attempts = 6
    message.last_error = "Twilio 21211 : numéro de destinataire invalide"
    session.commit()
    return message


def test_the_outbox_shows_status_reason_attempts_and_body_and_is_audited(
    client: Any,
    auth: Any,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    failed_message(session, territory)
    auth.login(make_user(territory, Role.COORDINATOR))
    page = client.get("/espace/messages").get_data(as_text=True)
    assert "Échec" in page and "Twilio 21211 : numéro de destinataire invalide" in page
    assert "Le Dr Roux peut vous recevoir le 3 mars." in page
    assert "Renvoyer" in page and 'href="/espace/messages"' in page  # the nav link
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "outbox_viewed"))


def test_a_retried_message_is_queued_again_from_zero_attempts(
    client: Any,
    auth: Any,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    message = failed_message(session, territory)
    auth.login(make_user(territory, Role.COORDINATOR))
    response = client.post(f"/espace/messages/{message.id}/renvoyer", follow_redirects=True)
    assert "sera renvoyé" in response.get_data(as_text=True)
    session.expire_all()
    retried = session.get(Message, message.id)
    assert retried is not None
    assert (retried.status, retried.attempts) == (MessageStatus.QUEUED, 0)


def test_another_cpts_message_is_invisible_and_retrying_it_is_a_404_that_is_audited(
    client: Any,
    auth: Any,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    ours, theirs = make_territory(), make_territory()
    foreign = failed_message(session, theirs, "theirs")
    auth.login(make_user(ours, Role.COORDINATOR))
    assert "Le Dr Roux" not in client.get("/espace/messages").get_data(as_text=True)
    assert client.post(f"/espace/messages/{foreign.id}/renvoyer").status_code == 404
    session.expire_all()
    assert session.get(Message, foreign.id).status is MessageStatus.FAILED  # type: ignore[union-attr]
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "message_not_found"))


def test_only_failed_messages_can_be_retried(
    client: Any,
    auth: Any,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    message = failed_message(session, territory)
    message.status = MessageStatus.SENT
    session.commit()
    auth.login(make_user(territory, Role.COORDINATOR))
    response = client.post(f"/espace/messages/{message.id}/renvoyer", follow_redirects=True)
    assert "n'est pas en échec" in response.get_data(as_text=True)


def test_a_failed_message_of_a_withdrawn_request_is_not_sent_again(
    client: Any,
    auth: Any,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    territory = make_territory()
    request = make_request(territory, Status.WITHDRAWN)
    message = failed_message(session, territory)
    message.request_id = request.id
    session.commit()
    auth.login(make_user(territory, Role.COORDINATOR))
    listed = client.get("/espace/messages").get_data(as_text=True)
    assert "Le Dr Roux peut vous recevoir" in listed and "Renvoyer" not in listed
    response = client.post(f"/espace/messages/{message.id}/renvoyer", follow_redirects=True)
    assert "La personne a retiré sa demande" in response.get_data(as_text=True)
    session.expire_all()
    kept = session.get(Message, message.id)
    assert kept is not None and kept.status is MessageStatus.FAILED


def test_messages_and_templates_are_named_in_french(
    client: Any,
    auth: Any,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    failed_message(session, territory)
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    outbox = client.get("/espace/messages").get_data(as_text=True)
    assert "<td>proposition au patient</td>" in outbox and "<td>proposal</td>" not in outbox
    listed = client.get("/espace/modeles").get_data(as_text=True)
    assert ">Relance du médecin</a>" in listed and ">doctor_reminder</a>" not in listed
    edit = client.get("/espace/modeles/doctor_reminder/sms").get_data(as_text=True)
    assert "<h1>Relance du médecin · SMS</h1>" in edit
