"""Patient intake: a checked submission becomes a request, in one transaction.

Geocode, check the territory, set eligible or out_of_territory, compute the priority, queue the
acknowledgement in the outbox, audit: all committed together or not at all. A client nonce
(`submission_key`) makes a double tap or a re-sent POST return the request already made.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, bindparam, func, select
from sqlalchemy.orm import Session, aliased

from geo.geocoding import ADDRESS, Geocoder
from geo.territory import territory_shape
from models import (
    AuditEntry,
    Channel,
    LocationPrecision,
    Message,
    MessageTemplate,
    Person,
    Request,
    RequestEvent,
    Source,
    Status,
    Territory,
    TerritoryCommune,
)
from models.precompiled import Precompiled
from models.tenancy import CrossTenantWrite, scoped_territory
from notifications.outbox import new_message_row
from orientation.links import LinkPurpose, LinkSigner
from orientation.services import audit
from orientation.services.bulk import insert_returning_id, insert_together
from orientation.services.contact import is_mobile
from orientation.services.household import Household
from orientation.services.intake_validation import IntakeData
from orientation.services.message_templates import override_body, render_with_override
from orientation.services.references import new_reference
from orientation.services.workflow import reached_columns


@dataclass(frozen=True)
class IntakeTerritory:
    """What a submission needs of its CPTS: read in one query on every questionnaire POST."""

    id: int
    slug: str
    name: str
    contact_phone: str
    contact_email: str
    insee_codes: frozenset[str]
    # The CPTS's own wording of the acknowledgement, by channel (absent: the shipped text).
    acknowledgement_texts: Mapping[Channel, str] = field(default_factory=dict)


_territories = Territory.__table__.c
_templates = MessageTemplate.__table__.c
_ACK_CHANNELS = (Channel.SMS, Channel.EMAIL)


def _acknowledgement_text(channel: Channel) -> ScalarSelect[str]:
    # In the territory's query rather than a query of its own: no round trip more per POST.
    return (
        select(_templates.body)
        .where(
            _templates.territory_id == _territories.id,
            _templates.key == "acknowledgement",
            _templates.channel == channel,
        )
        .scalar_subquery()
    )


_TERRITORY_BY_SLUG = Precompiled(
    select(
        _territories.id,
        _territories.slug,
        _territories.name,
        _territories.contact_phone,
        _territories.contact_email,
        func.aggregate_strings(TerritoryCommune.__table__.c.insee, ","),
        *(_acknowledgement_text(channel) for channel in _ACK_CHANNELS),
    )  # fmt: skip
    .select_from(Territory.__table__)
    .outerjoin(
        TerritoryCommune.__table__,
        TerritoryCommune.__table__.c.territory_id == _territories.id,
    )
    # None: a placeholder value, which Precompiled needs beside the separator literal above.
    .where(_territories.slug == bindparam("slug", None))
    .group_by(_territories.id)
)


def intake_territory(session: Session, slug: str) -> IntakeTerritory | None:
    """The CPTS of a questionnaire URL with its communes, in one round trip and without the ORM."""
    cursor = _TERRITORY_BY_SLUG.execute(session.connection(), {"slug": slug})
    row = cursor.fetchone()
    cursor.close()
    if row is None:
        return None
    codes = frozenset(row[5].split(",")) if row[5] else frozenset()
    texts = {c: text for c, text in zip(_ACK_CHANNELS, row[6:], strict=True) if text is not None}
    return IntakeTerritory(row[0], row[1], row[2], row[3], row[4], codes, texts)


class RecentTerritories:
    """The CPTS of each questionnaire URL as read at most `seconds` ago, in this process.

    Every submission needs its CPTS (communes, contacts, acknowledgement wording); reading it
    was a twelfth of a submission's work. Kept one second, a change an admin makes (communes,
    contacts, wording) reaches every worker within that second, which nobody can tell from
    at once; a slug that names no CPTS is not kept (a robot trying slugs fills nothing).
    """

    def __init__(self, seconds: float = 1.0, clock: Callable[[], float] = time.monotonic):
        self.seconds = seconds
        self._clock = clock
        self._kept: dict[str, tuple[float, IntakeTerritory]] = {}

    def get(self, session: Session, slug: str) -> IntakeTerritory | None:
        now = self._clock()
        kept = self._kept.get(slug)
        if kept is not None and now < kept[0]:
            return kept[1]
        found = intake_territory(session, slug)
        if found is None:
            self._kept.pop(slug, None)
        else:
            self._kept[slug] = (now + self.seconds, found)
        return found


@dataclass(frozen=True)
class Submitted:
    """The request a submission made (or found, for a repeated key) and its private link."""

    request_id: int
    reference: str
    status: Status
    source: Source
    token: str  # of the private link (/suivi/<token>)
    created: bool  # False when the submission key found an earlier request
    commune_insee: str = ""
    # How the acknowledgement (reference and private link) reaches the person; None: no
    # mobile nor e-mail, nothing is sent (whoever took the request gives the reference).
    acknowledged_by: Channel | None = None

    @classmethod
    def earlier(cls, request: Request, signer: LinkSigner) -> Submitted:
        # A replay of the submission gets the link that submission made, never a newer one:
        # after the coordinator sent a new link (patient_link_renewal), going back and sending
        # the form again on a shared phone must not hand it out. That first link opens nothing
        # then, as the person was told.
        return cls(request.id, request.reference, request.status, request.source,
                   private_token(signer, request.id, FIRST_LINK_VERSION), created=False,
                   commune_insee=request.commune_insee,
                   acknowledged_by=acknowledgement_channel(
                       request.phone, request.email, request.preferred_channel))  # fmt: skip


# Request.link_version of a new request (its server default): the version of its first link.
FIRST_LINK_VERSION = 0


def private_token(signer: LinkSigner, request_id: int, link_version: int) -> str:
    """The token of a request's private link (/suivi/<token>) at `link_version`, which must be
    the request's Request.link_version for the link to open it."""
    return signer.make(LinkPurpose.PATIENT_REQUEST, request_id, link_version)


def in_territory(
    territory: Territory | IntakeTerritory, insee: str, lat: float, lon: float, precision: str
) -> bool:
    """Commune membership; with an address-level point, the point inside the outline too."""
    shape = territory_shape(frozenset(territory.insee_codes))
    if precision == ADDRESS:
        return shape.contains(lat, lon)
    return insee in shape.insee_codes


class SubmissionKeyReused(Exception):
    """The submission key made a request with other answers: it is not that request's retry.

    An API client picks its Idempotency-Key; returning the earlier request (and its private
    link) to whoever sends the same key would give one patient's request to another caller.
    `earlier` is for the forms, whose key is our own random nonce, in that browser only."""

    def __init__(self, earlier: Submitted) -> None:
        super().__init__("submission key already used with other answers")
        self.earlier = earlier


def scoped_key(territory_id: int, submission_key: str) -> str | None:
    """The stored form of a client's key: a digest of the whole key (any length) within its
    CPTS, so that two CPTS's clients choosing the same key never meet; None without a key."""
    if not submission_key:
        return None
    return hashlib.sha256(f"{territory_id}:{submission_key}".encode()).hexdigest()


def answers_fingerprint(data: IntakeData, source: Source, referrer_id: int | None) -> str:
    """A digest of the checked answers (normalised: "06 12..." and "+336..." are the same),
    to tell a retry of a submission from another submission reusing its key."""
    # The dataclasses' repr lists every field's value, in a fixed order.
    return hashlib.sha256(repr((source.value, referrer_id, data)).encode()).hexdigest()


def find_by_key(session: Session, key: str | None) -> Request | None:
    if not key:
        return None
    return session.scalar(select(Request).where(Request.submission_key == key))


def submit_request(
    session: Session,
    territory: Territory | IntakeTerritory,
    data: IntakeData,
    *,
    source: Source,
    now: datetime,
    geocoder: Geocoder,
    signer: LinkSigner,
    base_url: str,
    submission_key: str = "",
    referrer_id: int | None = None,
    actor_user_id: int | None = None,
    ip: str = "",
    reference: str = "",
) -> Submitted:
    """Create the request, its persons, events, acknowledgement and audit entry; commit.

    Raise SubmissionKeyReused when `submission_key` made a request with other answers."""
    # No look-up first: the unique submission_key refuses a second insert (below), which
    # saves a round trip on every first submission and also catches two racing taps.
    key = scoped_key(territory.id, submission_key)
    fingerprint = answers_fingerprint(data, source, referrer_id) if key else None
    point = geocoder.locate(data.commune, data.street)
    inside = in_territory(territory, point.insee, point.lat, point.lon, point.precision)
    status = Status.ELIGIBLE if inside else Status.OUT_OF_TERRITORY
    reference = reference or new_reference()
    # Rows for plain INSERTs rather than ORM objects and a flush: the same rows for a fraction
    # of the CPU, and a shorter write transaction (a lock on SQLite).
    row: dict[str, Any] = {
        "territory_id": territory.id, "reference": reference, "status": status,
        "source": source, "source_tag": data.source_tag, "referrer_id": referrer_id,
        "phone": data.phone, "email": data.email, "preferred_channel": data.preferred_channel,
        "best_time": data.best_time, "street": data.street, "postal_code": data.postal_code,
        "commune_insee": data.commune.insee, "lat": point.lat, "lon": point.lon,
        "location_precision": LocationPrecision(point.precision), "reason": data.reason,
        "reason_detail": data.reason_detail, "already_sees_gp": data.already_sees_gp,
        "need_home_visits": data.need_home_visits,
        "need_reduced_mobility": data.need_reduced_mobility,
        "need_chronic_followup": data.need_chronic_followup, "language": data.language,
        "css_ame": data.css_ame, "comment": data.comment, "consent_at": now,
        "agrees_to_survey": data.agrees_to_survey, "created_at": now, "updated_at": now,
        "submission_key": key, "submission_fingerprint": fingerprint,
        # 70 and over, under 6, ALD, CSS/AME (DESIGN.md): a priority, never a doctor filter.
        **Household.of([(p.birth_date, p.ald) for p in data.persons], now.date())
        .columns(data.css_ame),
        **reached_columns(status, now),
    }  # fmt: skip
    actor = "patient" if source in (Source.QUESTIONNAIRE, Source.API) else ""
    received = Status.RECEIVED.value
    events: list[dict[str, Any]] = [
        # What workflow.record_event then workflow.change_status record, as rows.
        {"kind": "submitted", "actor_user_id": actor_user_id, "actor_label": actor,
         "from_status": received, "to_status": received,
         "note": f"source : {source.value}" + (f" ({data.source_tag})" if data.source_tag else "")},
        {"kind": "status", "actor_user_id": None, "actor_label": "system",
         "from_status": received, "to_status": status.value,
         "note": f"contrôle du territoire : {data.commune.name} ({point.precision})"},
    ]  # fmt: skip
    if scoped_territory(session) not in (None, territory.id):
        raise CrossTenantWrite("Request of another territory")
    connection = session.connection()
    try:
        request_id = insert_returning_id(connection, Request, row)
    except connection.dialect.loaded_dbapi.IntegrityError:
        # The same key was used before (a double tap, a re-sent POST): return that request.
        session.rollback()
        earlier = find_by_key(session, key)
        if earlier is None:
            raise
        if earlier.submission_fingerprint != fingerprint:  # None: anonymised since
            raise SubmissionKeyReused(Submitted.earlier(earlier, signer)) from None
        return Submitted.earlier(earlier, signer)
    owned = {"territory_id": territory.id, "request_id": request_id}
    persons = [
        {**owned, "position": i, "first_name": p.first_name, "last_name": p.last_name,
         "birth_date": p.birth_date, "ald": p.ald}
        for i, p in enumerate(data.persons)
    ]  # fmt: skip
    token = private_token(signer, request_id, FIRST_LINK_VERSION)
    channel = acknowledgement_channel(data.phone, data.email, data.preferred_channel)
    submitted = Submitted(request_id, reference, status, source, token, created=True,
                          commune_insee=data.commune.insee, acknowledged_by=channel)  # fmt: skip
    acknowledgement = _acknowledgement(
        session, territory, submitted, data, f"{base_url}/suivi/{token}", now
    )
    entry = audit.entry_row(
        "request.submitted", territory_id=territory.id, user_id=actor_user_id,
        actor_label=actor, object_type="request", object_id=request_id, ip=ip,
        source=source.value,
    )  # fmt: skip
    insert_together(connection, [
        (Person, persons),
        (RequestEvent, [{**owned, "at": now, **e} for e in events]),
        (Message, [acknowledgement] if acknowledgement else []),
        (AuditEntry, [entry]),
    ])  # fmt: skip
    session.commit()
    return submitted


def acknowledgement_channel(phone: str, email: str, preferred_channel: str) -> Channel | None:
    """SMS or e-mail by preference; None when only a landline is known (the CPTS calls)."""
    can_sms = bool(phone) and is_mobile(phone)
    if preferred_channel == "email" and email:
        return Channel.EMAIL
    if can_sms:
        return Channel.SMS
    return Channel.EMAIL if email else None


def _acknowledgement(
    session: Session,
    territory: Territory | IntakeTerritory,
    submitted: Submitted,
    data: IntakeData,
    link: str,
    now: datetime,
) -> dict[str, Any] | None:
    """The outbox row of the acknowledgement (SMS or e-mail), or None: nothing to send it to."""
    channel = submitted.acknowledged_by
    if channel is None:
        return None
    override = (
        territory.acknowledgement_texts.get(channel)
        if isinstance(territory, IntakeTerritory)
        else override_body(session, territory.id, "acknowledgement", channel)
    )
    message = render_with_override(
        "acknowledgement",
        channel,
        {
            "cpts_name": territory.name,
            "cpts_phone": territory.contact_phone,
            "cpts_email": territory.contact_email,
            "reference": submitted.reference,
            "link": link,
            "out_of_territory": submitted.status is Status.OUT_OF_TERRITORY,
        },
        override,
    )
    return new_message_row(
        territory_id=territory.id,
        channel=channel,
        recipient=data.phone if channel is Channel.SMS else data.email,
        subject=message.subject,
        body=message.body,
        purpose="acknowledgement",
        idempotency_key=f"acknowledgement:{submitted.reference}",
        request_id=submitted.request_id,
        now=now,
    )


class NotForwardable(Exception):
    """No such CPTS, it does not cover the commune, or the request is not out of territory."""


def forward_target(session: Session, request: Request, slug: str) -> Territory:
    """The hosted CPTS of `slug`, if the request may be forwarded there: out of territory (or
    forwarded already: a second click finds the same copy), and that CPTS covers its commune."""
    from orientation.services.patient_link import was_forwarded
    from orientation.services.territories import territories_covering

    if request.status is not Status.OUT_OF_TERRITORY and not was_forwarded(request):
        raise NotForwardable(request.reference)
    for covering in territories_covering(session, request.commune_insee):
        if covering.slug == slug and covering.id != request.territory_id:
            return covering
    raise NotForwardable(slug)


def forward_request(
    session: Session,
    request: Request,
    target: Territory,
    *,
    now: datetime,
    geocoder: Geocoder,
    signer: LinkSigner,
    base_url: str,
    ip: str = "",
    actor_user_id: int | None = None,
) -> Submitted:
    """Send an out-of-territory request to the hosted CPTS that covers the commune, once: by
    the person (their private link) or by the staff who took it (`actor_user_id`)."""
    from geo.communes import gazetteer
    from orientation.services.intake_validation import PersonData
    from orientation.services.patient_link import close_as_forwarded, was_forwarded

    key = f"forward:{request.id}"
    earlier = find_by_key(session, scoped_key(target.id, key))
    if earlier is not None:
        return Submitted.earlier(earlier, signer)
    if was_forwarded(request):  # to another CPTS that covers the commune too
        raise NotForwardable(request.reference)
    commune = gazetteer().by_insee[request.commune_insee]
    data = IntakeData(
        persons=[
            PersonData(p.first_name, p.last_name, p.birth_date, p.ald)
            for p in request.persons
            if p.birth_date is not None
        ],
        phone=request.phone, email=request.email, preferred_channel=request.preferred_channel,
        best_time=request.best_time, street=request.street, postal_code=request.postal_code,
        commune=commune, reason=request.reason, reason_detail=request.reason_detail,
        already_sees_gp=request.already_sees_gp, need_home_visits=request.need_home_visits,
        need_reduced_mobility=request.need_reduced_mobility,
        need_chronic_followup=request.need_chronic_followup, language=request.language,
        css_ame=request.css_ame, comment=request.comment,
        agrees_to_survey=request.agrees_to_survey, source_tag=request.source_tag,
    )  # fmt: skip
    reference = new_reference()
    close_as_forwarded(session, request, target, reference, now=now, actor_user_id=actor_user_id)
    # The link to the copy, committed with it: the copy's id, read by its key (through an
    # alias: not the row being updated) when this request is flushed, which submit_request's
    # commit does after the copy's INSERT (no autoflush before it). A retry that finds the copy
    # made earlier rolls that assignment back (submit_request's IntegrityError path): set below.
    copy = aliased(Request)
    by_key = select(copy.id).where(copy.submission_key == scoped_key(target.id, key))
    request.forwarded_to_id = by_key.scalar_subquery()
    with session.no_autoflush:
        submitted = submit_request(
            session, target, data, source=request.source, now=now, geocoder=geocoder,
            signer=signer, base_url=base_url, submission_key=key, ip=ip, reference=reference,
            actor_user_id=actor_user_id,
        )  # fmt: skip
    if request.forwarded_to_id != submitted.request_id:
        request.forwarded_to_id = submitted.request_id
        session.commit()
    return submitted
