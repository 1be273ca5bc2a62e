"""Request: a household's request for a médecin traitant, its persons and its events."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    literal_column,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, TerritoryOwned, utcnow
from models.doctor import LocationPrecision


class Status(enum.StrEnum):
    """The workflow of a request (see DESIGN.md)."""

    RECEIVED = "received"
    ELIGIBLE = "eligible"
    OUT_OF_TERRITORY = "out_of_territory"
    IN_PROGRESS = "in_progress"
    DOCTORS_CONTACTED = "doctors_contacted"
    PROPOSED = "proposed"
    ORIENTED = "oriented"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"


OPEN_STATUSES = frozenset(
    {
        Status.RECEIVED,
        Status.ELIGIBLE,
        Status.OUT_OF_TERRITORY,
        Status.IN_PROGRESS,
        Status.DOCTORS_CONTACTED,
        Status.PROPOSED,
    }
)


class Source(enum.StrEnum):
    QUESTIONNAIRE = "questionnaire"  # the patient, usually from a flyer's QR code
    PHONE = "phone"  # the coordinator fills it in on the phone
    PROFESSIONAL = "professional"  # a referring professional or CPAM agent
    API = "api"  # professional software through the JSON API


class Reason(enum.StrEnum):
    GP_LEFT = "gp_left"  # retired or left
    MOVED = "moved"
    CANNOT_CONTINUE = "cannot_continue"
    OTHER = "other"


# The indicators of a period read two covering indexes, never the wide rows. The counts are
# grouped by every figure at once, so the figures come first: the groups are read in index
# order, without sorting 100,000 entries (services/indicators.py).
FIGURE_COLUMNS = (
    "territory_id", "status", "source", "has_elderly", "has_child", "has_ald", "css_ame",
    "need_home_visits", "reached_eligible", "reached_out_of_territory", "created_at",
    "persons_count", "oriented_doctor_id",
)  # fmt: skip
# Months, delays and referring professionals: a range of dates first.
REPORT_COLUMNS = ("territory_id", "created_at", "first_proposed_at", "oriented_at", "referrer_id")
# Where the partial indexes hold a row (the indicators' queries repeat these conditions).
REFERRED = "referrer_id IS NOT NULL"
REACHED = "first_proposed_at IS NOT NULL OR oriented_at IS NOT NULL"
CASCADE_SQL = "cascade_state <> ''"  # the rows of ix_requests_cascade_state
FORWARDED_SQL = "forwarded_to_id IS NOT NULL"  # the rows of ix_requests_forwarded_to_id


class Request(TerritoryOwned, Base):
    """A household's request (one or more persons)."""

    __tablename__ = "requests"
    territory_indexed = False  # every composite index below starts with territory_id
    __table_args__ = (
        # The queue: open requests of one territory, priority first, then oldest.
        Index("ix_requests_queue", "territory_id", "status", "is_priority", "created_at"),
        # Requests in a cascade of doctors (running, or run out: flagged in the queue). Partial,
        # as the two below: few requests at a time, so a submission writes no entry in them
        # and the dispatcher finds the running cascades without reading every request. A query
        # reaches a partial index only by carrying its condition itself (IN_CASCADE,
        # FOLLOW_UP_FLAGGED): neither database infers `<> ''` from `= 'running'`.
        Index(
            "ix_requests_cascade_state",
            "cascade_state",
            "territory_id",
            "status",
            postgresql_where=text(CASCADE_SQL),
            sqlite_where=text(CASCADE_SQL),
        ),
        Index("ix_requests_figures", *FIGURE_COLUMNS),
        Index("ix_requests_reports", *REPORT_COLUMNS),
        # Partial (migration 0012): only the rows the referrers' count and the delays read, so
        # that PostgreSQL reads them index-only instead of the whole table.
        Index(
            "ix_requests_referrers",
            "territory_id",
            "created_at",
            "referrer_id",
            postgresql_where=text(REFERRED),
            sqlite_where=text(REFERRED),
        ),
        Index(
            "ix_requests_delays",
            "territory_id",
            "created_at",
            "first_proposed_at",
            "oriented_at",
            postgresql_where=text(REACHED),
            sqlite_where=text(REACHED),
        ),
        # Forwarded requests only (partial: a submission writes no entry): what ON DELETE SET
        # NULL looks up when a request is deleted, instead of reading every request.
        Index(
            "ix_requests_forwarded_to_id",
            "forwarded_to_id",
            postgresql_where=text(FORWARDED_SQL),
            sqlite_where=text(FORWARDED_SQL),
        ),
        # Requests the follow-up flagged for a call back: counted and filtered in the queue.
        Index(
            "ix_requests_follow_up",
            "territory_id",
            "needs_follow_up",
            "status",
            postgresql_where=text("needs_follow_up"),
            sqlite_where=text("needs_follow_up = 1"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Short, not guessable, read over the phone (Crockford base32, e.g. K7QM-4T2X).
    reference: Mapped[str] = mapped_column(String(12), unique=True)
    status: Mapped[Status] = mapped_column(
        Enum(Status, native_enum=False, length=20), default=Status.RECEIVED
    )
    source: Mapped[Source] = mapped_column(Enum(Source, native_enum=False, length=20))
    source_tag: Mapped[str] = mapped_column(String(40), default="")  # flyer: pharmacie, mairie...
    referrer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    # Contact
    phone: Mapped[str] = mapped_column(String(20), default="")  # E.164
    email: Mapped[str] = mapped_column(String(254), default="")
    preferred_channel: Mapped[str] = mapped_column(String(10), default="sms")
    best_time: Mapped[str] = mapped_column(String(100), default="")
    # Address
    street: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str] = mapped_column(String(5), default="")
    commune_insee: Mapped[str] = mapped_column(String(5), default="", index=True)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    location_precision: Mapped[LocationPrecision] = mapped_column(
        Enum(LocationPrecision, native_enum=False, length=10), default=LocationPrecision.NONE
    )
    # Why and what
    reason: Mapped[Reason] = mapped_column(Enum(Reason, native_enum=False, length=20))
    reason_detail: Mapped[str] = mapped_column(Text, default="")
    already_sees_gp: Mapped[bool] = mapped_column(Boolean, default=False)
    need_home_visits: Mapped[bool] = mapped_column(Boolean, default=False)
    need_reduced_mobility: Mapped[bool] = mapped_column(Boolean, default=False)
    need_chronic_followup: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str] = mapped_column(String(60), default="")
    css_ame: Mapped[bool] = mapped_column(Boolean, default=False)
    # Any priority criterion among the persons (70+, under 6, ALD) or CSS/AME: sorts the queue.
    is_priority: Mapped[bool] = mapped_column(Boolean, default=False)
    # The household as the indicators count it, stored when the persons are written
    # (services/household.py): how many persons, and the criteria at the date of the request
    # (70 and over, under 6, ALD). Kept as they were when anonymisation coarsens birth dates.
    persons_count: Mapped[int] = mapped_column(Integer, default=0)
    has_elderly: Mapped[bool] = mapped_column(Boolean, default=False)
    has_child: Mapped[bool] = mapped_column(Boolean, default=False)
    has_ald: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str] = mapped_column(Text, default="")
    consent_at: Mapped[datetime | None] = mapped_column(default=None)
    agrees_to_survey: Mapped[bool] = mapped_column(Boolean, default=False)
    oriented_doctor_id: Mapped[int | None] = mapped_column(
        ForeignKey("doctors.id", ondelete="SET NULL"), default=None
    )
    closed_reason: Mapped[str] = mapped_column(String(200), default="")
    # Closed as forwarded: the copy it goes on as at the CPTS that covers its commune
    # (services.intake.forward_request). An id, no relationship: the copy belongs to the other
    # CPTS, and only the person's own link reads it (services.patient_link.forwarded_copy).
    # Cleared when this request is anonymised: it would tie it to the person's named copy.
    # No Python default: the submission's INSERT (services.intake) does not carry it.
    forwarded_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="SET NULL")
    )
    # The automatic cascade of doctor contacts: "" (none), running, done, exhausted.
    # "exhausted" flags the request in the queue: the coordinator must take it over.
    cascade_state: Mapped[str] = mapped_column(String(12), default="")
    # The workflow as the indicators count it, stored by each status change
    # (workflow.change_status): statuses ever reached, and when the request was first
    # proposed and oriented (the delays from the request).
    reached_eligible: Mapped[bool] = mapped_column(Boolean, default=False)
    reached_out_of_territory: Mapped[bool] = mapped_column(Boolean, default=False)
    first_proposed_at: Mapped[datetime | None] = mapped_column(default=None)
    oriented_at: Mapped[datetime | None] = mapped_column(default=None)
    anonymised_at: Mapped[datetime | None] = mapped_column(default=None)
    # RGPD article 18: the patient asked to limit processing; the request is kept, not worked on.
    processing_limited_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    # The client's nonce (hidden form field or Idempotency-Key header): a double tap or a
    # re-sent POST finds the request already made instead of creating a second one.
    # Stored scoped to the CPTS (services.intake.scoped_key), with a fingerprint of the answers
    # it was first sent with: the same key with other answers does not find this request.
    submission_key: Mapped[str | None] = mapped_column(String(80), unique=True, default=None)
    submission_fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    # The private link's version (LinkPurpose.PATIENT_REQUEST): a link opens the request only
    # at this version. Raised when the coordinator sends a new link (services.
    # patient_link_renewal), so that a link someone else got (a shared phone, a forwarded SMS)
    # opens nothing any more. The database's default only (0): no Python default, so that the
    # INSERTs of a table as of earlier revisions (tests/test_migrations.py) do not carry it.
    link_version: Mapped[int] = mapped_column(Integer, server_default="0")
    # Follow-up after a proposal (services/followup.py): sent once; an answer that the patient
    # has no appointment or no declaration yet puts the request back in the queue, flagged.
    follow_up_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    follow_up_answered_at: Mapped[datetime | None] = mapped_column(default=None)
    needs_follow_up: Mapped[bool] = mapped_column(Boolean, default=False)
    # Year-end survey (services/survey.py): only that it was sent and that it was answered,
    # never when nor what: the answer is kept apart from identities (models/survey.py), and
    # an answering time here could be lined up with the answers.
    survey_sent_at: Mapped[datetime | None] = mapped_column(default=None)
    survey_answered: Mapped[bool] = mapped_column(Boolean, default=False)

    persons: Mapped[list[Person]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="Person.position"
    )
    events: Mapped[list[RequestEvent]] = relationship(
        back_populates="request", cascade="all, delete-orphan", order_by="RequestEvent.id"
    )


# The conditions of the partial indexes above, to put in the queries they serve (as literals:
# a bound parameter would not match the index's condition).
IN_CASCADE = Request.cascade_state != literal_column("''")
FOLLOW_UP_FLAGGED = Request.needs_follow_up == true()


class Person(TerritoryOwned, Base):
    """One person of the household concerned by the request."""

    __tablename__ = "persons"
    territory_indexed = False  # read through its request
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date | None] = mapped_column(Date)
    ald: Mapped[bool] = mapped_column(Boolean, default=False)  # affection de longue durée

    request: Mapped[Request] = relationship(back_populates="persons")


class RequestEvent(TerritoryOwned, Base):
    """Every status change or notable action on a request: who, when, from, to, note."""

    __tablename__ = "request_events"
    territory_indexed = False  # read through its request
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40), default="status")
    # A user id when staff acted; otherwise a label such as "patient", "doctor:12", "system".
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    actor_label: Mapped[str] = mapped_column(String(40), default="")
    from_status: Mapped[str] = mapped_column(String(20), default="")
    to_status: Mapped[str] = mapped_column(String(20), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    request: Mapped[Request] = relationship(back_populates="events")
