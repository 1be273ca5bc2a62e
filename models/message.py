"""Message: the outbox. Written in the same transaction as the action, sent after commit."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, Integer, String, Text, literal_column, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TerritoryOwned, utcnow


class Channel(enum.StrEnum):
    SMS = "sms"
    EMAIL = "email"


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"


PROVIDER_ID_SQL = "provider_message_id <> ''"


class Message(TerritoryOwned, Base):
    """One SMS or e-mail to a patient, a doctor or a coordinator."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_due", "status", "next_attempt_at"),
        # Only messages a provider has taken (an acknowledgement is queued without an id): a
        # lookup by id carries HAS_PROVIDER_ID for either database to use it.
        Index(
            "ix_messages_provider_message_id",
            "provider_message_id",
            postgresql_where=text(PROVIDER_ID_SQL),
            sqlite_where=text(PROVIDER_ID_SQL),
        ),
        # Only messages to doctors: a patient's (every acknowledgement) adds no index entry.
        Index(
            "ix_messages_doctor_id",
            "doctor_id",
            postgresql_where=text("doctor_id IS NOT NULL"),
            sqlite_where=text("doctor_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique per logical message: a re-sent POST or a retried job cannot queue it twice,
    # and providers that accept one (SMTP Message-ID) get it too.
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL"), default=None, index=True
    )
    doctor_id: Mapped[int | None] = mapped_column(
        ForeignKey("doctors.id", ondelete="SET NULL"), default=None
    )
    purpose: Mapped[str] = mapped_column(String(40))  # acknowledgement, proposal, reminder...
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=10))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[MessageStatus] = mapped_column(
        Enum(MessageStatus, native_enum=False, length=10), default=MessageStatus.QUEUED
    )
    provider: Mapped[str] = mapped_column(String(20), default="")
    provider_message_id: Mapped[str] = mapped_column(String(80), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)
    body_purged_at: Mapped[datetime | None] = mapped_column(default=None)


# The condition of ix_messages_provider_message_id, to put in a lookup by provider id.
HAS_PROVIDER_ID = Message.provider_message_id != literal_column("''")
