"""Queueing a message in the outbox, in the caller's transaction.

A message leaves the building only after the transaction that queued it commits (the
dispatcher picks it up), so a rolled-back action never sends anything, and a committed one is
never lost, whatever happens to the provider.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Channel, Message, MessageStatus, utcnow


def queue_message(
    session: Session,
    *,
    territory_id: int,
    channel: Channel,
    recipient: str,
    body: str,
    purpose: str,
    idempotency_key: str,
    subject: str = "",
    request_id: int | None = None,
    doctor_id: int | None = None,
    not_before: datetime | None = None,
) -> Message:
    """Add a message to the outbox, or return the one already queued under the same key."""
    existing = session.scalar(select(Message).where(Message.idempotency_key == idempotency_key))
    if existing is not None:
        return existing
    message = Message(
        territory_id=territory_id,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        purpose=purpose,
        idempotency_key=idempotency_key,
        request_id=request_id,
        doctor_id=doctor_id,
        status=MessageStatus.QUEUED,
        next_attempt_at=not_before or utcnow(),
    )
    session.add(message)
    return message


def new_message_row(
    *,
    territory_id: int,
    channel: Channel,
    recipient: str,
    body: str,
    purpose: str,
    idempotency_key: str,
    now: datetime,
    subject: str = "",
    request_id: int | None = None,
) -> dict[str, Any]:
    """The outbox row of a message whose key names a row made in this very transaction.

    For an INSERT with the transaction's other rows (the submission hot path): no look-up first
    (the key cannot exist yet) and no ORM object. The unique idempotency key still refuses a
    second copy.
    """
    return {
        "territory_id": territory_id,
        "channel": channel,
        "recipient": recipient,
        "subject": subject,
        "body": body,
        "purpose": purpose,
        "idempotency_key": idempotency_key,
        "request_id": request_id,
        "status": MessageStatus.QUEUED,
        "next_attempt_at": now,
    }


def withhold_queued(
    session: Session, request_id: int, reason: str, *, purpose: str | None = None
) -> None:
    """Mark the request's messages still waiting (of `purpose`, or all) failed with `reason`,
    in the caller's transaction. The dispatcher takes only queued messages, so they are not
    sent; one it is sending at this moment still goes."""
    where = [Message.request_id == request_id, Message.status == MessageStatus.QUEUED]
    if purpose is not None:
        where.append(Message.purpose == purpose)
    session.execute(
        update(Message)
        .where(*where)
        .values(status=MessageStatus.FAILED, last_error=reason)
        .execution_options(synchronize_session="fetch")
    )


def readdress_queued(session: Session, request_id: int, channel: Channel, recipient: str) -> None:
    """Send the request's messages to the person still waiting on `channel` to `recipient`
    (their corrected phone or e-mail); with no `recipient` for that channel any more, they are
    not sent. Messages to doctors (doctor_id set) are left alone."""
    where = [
        Message.request_id == request_id,
        Message.status == MessageStatus.QUEUED,
        Message.channel == channel,
        Message.doctor_id.is_(None),
    ]
    values: dict[str, Any] = (
        {"recipient": recipient}
        if recipient
        else {"status": MessageStatus.FAILED, "last_error": NO_RECIPIENT_LEFT}
    )
    session.execute(
        update(Message)
        .where(*where)
        .values(**values)
        .execution_options(synchronize_session="fetch")
    )


NO_RECIPIENT_LEFT = "Non envoyé : la personne a retiré ce moyen de contact de sa demande."
