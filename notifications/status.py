"""Delivery reports from providers (Twilio's status callback) applied to outbox messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Message, MessageStatus
from models.message import HAS_PROVIDER_ID
from notifications.providers.twilio_sms import TWILIO_STATUSES


def apply_twilio_report(
    session: Session,
    *,
    idempotency_key: str,
    sid: str,
    twilio_status: str,
    error_code: str,
    now: datetime,
) -> Message | None:
    """Record what Twilio says of a message; None when the report matches no message of ours.

    The report may come before the dispatcher has recorded the SID (the key in the callback
    URL finds the message then), and reports may arrive out of order: a message already
    delivered or failed is never moved back to sent.
    """
    message = None
    if idempotency_key:
        message = session.scalar(select(Message).where(Message.idempotency_key == idempotency_key))
    if message is None and sid:
        message = session.scalar(
            select(Message).where(Message.provider_message_id == sid, HAS_PROVIDER_ID)
        )
    if message is None or (message.provider_message_id not in ("", sid)):
        return None
    status = TWILIO_STATUSES.get(twilio_status)
    if status is None:
        return message
    message.provider_message_id = sid
    if status is MessageStatus.DELIVERED:
        message.status = MessageStatus.DELIVERED
        message.delivered_at = message.delivered_at or now
        message.last_error = ""
    elif status is MessageStatus.FAILED and message.status is not MessageStatus.DELIVERED:
        message.status = MessageStatus.FAILED
        message.last_error = f"Twilio : non distribué ({twilio_status}, code {error_code or '?'})"
    elif status is MessageStatus.SENT and message.status in (
        MessageStatus.QUEUED,
        MessageStatus.SENDING,
    ):
        message.status = MessageStatus.SENT
    message.sent_at = message.sent_at or now
    return message
