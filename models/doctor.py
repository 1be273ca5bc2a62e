"""Doctor: a GP of the territory and the availability they declare (volunteer or not yet)."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TerritoryOwned, utcnow


class Accepting(enum.StrEnum):
    YES = "yes"
    NO = "no"
    PAUSED = "paused"  # until paused_until


class VolunteerStatus(enum.StrEnum):
    NOT_YET = "not_yet"  # pre-filled from the national directory, never asked
    VOLUNTEER = "volunteer"
    WITHDRAWN = "withdrawn"
    DECLINED = "declined"  # invited, answered no: never invited again by the bulk action


class LocationPrecision(enum.StrEnum):
    NONE = "none"  # could not be geocoded: kept, flagged, excluded from ranking
    COMMUNE = "commune"  # a point inside the commune
    ADDRESS = "address"  # an address point (BAN) or coordinates given
    MANUAL = "manual"  # placed by a coordinator on the map


class Doctor(TerritoryOwned, Base):
    """A general practitioner. CSS/AME is never a doctor setting: refusing them is unlawful."""

    __tablename__ = "doctors"
    __table_args__ = (UniqueConstraint("territory_id", "rpps", name="doctor_rpps"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rpps: Mapped[str] = mapped_column(String(11))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    practice_address: Mapped[str] = mapped_column(String(300), default="")
    postal_code: Mapped[str] = mapped_column(String(5), default="")
    commune_insee: Mapped[str | None] = mapped_column(String(5), default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    location_precision: Mapped[LocationPrecision] = mapped_column(
        Enum(LocationPrecision, native_enum=False, length=10), default=LocationPrecision.NONE
    )
    phone: Mapped[str] = mapped_column(String(20), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    preferred_channel: Mapped[str] = mapped_column(String(10), default="email")
    volunteer_status: Mapped[VolunteerStatus] = mapped_column(
        Enum(VolunteerStatus, native_enum=False, length=10), default=VolunteerStatus.NOT_YET
    )
    accepting: Mapped[Accepting] = mapped_column(
        Enum(Accepting, native_enum=False, length=10), default=Accepting.NO
    )
    paused_until: Mapped[date | None] = mapped_column(Date, default=None)
    # New patients the doctor can still take until the next refresh; never below zero.
    capacity_left: Mapped[int] = mapped_column(Integer, default=0)
    accepts_under_6: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_elderly_dependent: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_ald_followup: Mapped[bool] = mapped_column(Boolean, default=True)
    home_visits: Mapped[bool] = mapped_column(Boolean, default=False)
    home_visit_radius_km: Mapped[float] = mapped_column(Float, default=0.0)
    languages: Mapped[str] = mapped_column(String(200), default="")  # ';'-separated
    step_free_access: Mapped[bool] = mapped_column(Boolean, default=False)
    coordinator_note: Mapped[str] = mapped_column(Text, default="")
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    confirmed_by: Mapped[str] = mapped_column(String(40), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Signed self-service links carry this number; it goes up on each submission, so a link
    # works once (a replayed or forwarded old link changes nothing).
    link_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def display_name(self) -> str:
        return f"Dr {self.first_name} {self.last_name}"


class DoctorSite(TerritoryOwned, Base):
    """Another place where the doctor consults (a "site secondaire"); the main practice stays
    on the Doctor row. Ranking measures from the doctor's nearest placed site.
    """

    __tablename__ = "doctor_sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    postal_code: Mapped[str] = mapped_column(String(5), default="")
    commune_insee: Mapped[str | None] = mapped_column(String(5), default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    location_precision: Mapped[LocationPrecision] = mapped_column(
        Enum(LocationPrecision, native_enum=False, length=10), default=LocationPrecision.NONE
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def placed(self) -> bool:
        return (
            self.lat is not None
            and self.lon is not None
            and self.location_precision is not LocationPrecision.NONE
        )


class DoctorEvent(TerritoryOwned, Base):
    """One change to a doctor's record, with its source (doctor link, coordinator, import...)."""

    __tablename__ = "doctor_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(20))  # doctor_link, coordinator, import, ...
    actor_label: Mapped[str] = mapped_column(String(200), default="")
    action: Mapped[str] = mapped_column(String(40))
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DoctorReminder(TerritoryOwned, Base):
    """A doctor's place in one refresh campaign: reminders sent, link opened, confirmed, stale.

    A campaign is identified per doctor by the confirmation it renews (`campaign`), so the
    reminder command can run every day and still send each reminder once.
    """

    __tablename__ = "doctor_reminders"
    __table_args__ = (UniqueConstraint("doctor_id", "campaign", name="doctor_reminder_campaign"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    doctor_id: Mapped[int] = mapped_column(ForeignKey("doctors.id", ondelete="CASCADE"), index=True)
    campaign: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime] = mapped_column()
    first_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    second_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    opened_at: Mapped[datetime | None] = mapped_column(default=None)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    stale_at: Mapped[datetime | None] = mapped_column(default=None)
