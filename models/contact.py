"""DoctorContact: asking one doctor whether they can take one request's patient (fiche 2)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, Float, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TerritoryOwned, utcnow


class ContactStatus(enum.StrEnum):
    ASKED = "asked"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"  # no answer within the CPTS's delay (the cascade moved on)
    CANCELLED = "cancelled"  # the request was settled before the doctor answered


class DoctorContact(TerritoryOwned, Base):
    """One doctor asked about one request; answered through a signed link."""

    __tablename__ = "doctor_contacts"
    __table_args__ = (
        # The cascade timer looks for unanswered contacts of running cascades.
        Index("ix_doctor_contacts_pending", "status", "in_cascade", "asked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    doctor_id: Mapped[int] = mapped_column(ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    status: Mapped[ContactStatus] = mapped_column(
        Enum(ContactStatus, native_enum=False, length=10), default=ContactStatus.ASKED
    )
    # 1 for the first doctor asked about this request, 2 for the next...
    position: Mapped[int] = mapped_column(Integer, default=1)
    in_cascade: Mapped[bool] = mapped_column(Boolean, default=False)
    distance_km: Mapped[float | None] = mapped_column(Float, default=None)
    asked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
