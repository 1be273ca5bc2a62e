"""Patients' rights (RGPD articles 15 to 18): access, rectification, erasure, limitation.

Erasure anonymises the request rather than deleting it: identity and contact go, what the
indicators count stays (status, dates, commune, flags, the birth year), so a CPTS's yearly
figures do not change when a patient leaves or when retention runs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, Message, Person, Request, Status
from notifications.outbox import withhold_queued
from orientation.services import audit
from orientation.services.contact import is_mobile, normalise_email, normalise_phone
from orientation.services.doctor_contacts import cancel_open_contacts
from orientation.services.household import store_household
from orientation.services.intake_validation import LIMITS, parse_birth_date
from orientation.services.local_time import in_paris
from orientation.services.patient_link import follow_contact_change
from orientation.services.references import normalise_reference
from orientation.services.workflow import change_status, record_event

ERASED = "[effacé]"


class RightKind(enum.StrEnum):
    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    LIMITATION = "limitation"
    LIMITATION_LIFTED = "limitation_lifted"


RIGHT_LABELS = {
    RightKind.ACCESS: "Accès (copie des données)",
    RightKind.RECTIFICATION: "Rectification",
    RightKind.ERASURE: "Effacement",
    RightKind.LIMITATION: "Limitation du traitement",
    RightKind.LIMITATION_LIFTED: "Levée de la limitation",
}
WITHHELD = "Non envoyé : traitement limité à la demande du patient."
ERASED_BEFORE_SENDING = "Non envoyé : les données de la demande ont été effacées."


class AlreadyAnonymised(Exception):
    """The request was anonymised: nothing personal is left to show or change."""


@dataclass(frozen=True)
class CorrectionError:
    """One refused value: its field (of the person `person_id`, if set), in French."""

    field: str
    message: str
    person_id: int | None = None


class InvalidCorrection(ValueError):
    """Corrected values are not acceptable; `errors` lists each, nothing was changed."""

    def __init__(self, errors: list[CorrectionError]) -> None:
        super().__init__("; ".join(error.message for error in errors))
        self.errors = errors

    @property
    def field(self) -> str:
        return self.errors[0].field

    @property
    def message(self) -> str:
        return self.errors[0].message


def find_request(session: Session, typed: str) -> Request | None:
    """The request of that reference, however it was typed or read out ('tse80zf4').

    With the desk's session, scoped to one CPTS, another CPTS's reference finds nothing."""
    reference = normalise_reference(typed)
    return session.scalar(select(Request).where(Request.reference == reference))


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_request_data(session: Session, request: Request) -> dict[str, Any]:
    """Everything held about the household: request, persons, events, messages (JSON-ready)."""
    messages = session.scalars(
        select(Message).where(Message.request_id == request.id).order_by(Message.id)
    ).all()
    return {
        "format": "orientation-export-1",
        "request": {
            "reference": request.reference,
            "status": request.status.value,
            "source": request.source.value,
            "created_at": _iso(request.created_at),
            "closed_at": _iso(request.closed_at),
            "anonymised_at": _iso(request.anonymised_at),
            "processing_limited_at": _iso(request.processing_limited_at),
            "consent_at": _iso(request.consent_at),
            "phone": request.phone,
            "email": request.email,
            "preferred_channel": request.preferred_channel,
            "best_time": request.best_time,
            "street": request.street,
            "postal_code": request.postal_code,
            "commune_insee": request.commune_insee,
            "reason": request.reason.value,
            "reason_detail": request.reason_detail,
            "already_sees_gp": request.already_sees_gp,
            "need_home_visits": request.need_home_visits,
            "need_reduced_mobility": request.need_reduced_mobility,
            "need_chronic_followup": request.need_chronic_followup,
            "language": request.language,
            "css_ame": request.css_ame,
            "is_priority": request.is_priority,
            "comment": request.comment,
            "agrees_to_survey": request.agrees_to_survey,
        },
        "persons": [
            {
                "first_name": person.first_name,
                "last_name": person.last_name,
                "birth_date": _iso(person.birth_date),
                "ald": person.ald,
            }
            for person in request.persons
        ],
        "events": [
            {
                "at": _iso(event.at),
                "kind": event.kind,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "note": event.note,
            }
            for event in request.events
        ],
        "messages": [
            {
                "created_at": _iso(message.created_at),
                "channel": message.channel.value,
                "purpose": message.purpose,
                "recipient": message.recipient,
                "subject": message.subject,
                "body": message.body,
                "status": message.status.value,
            }
            for message in messages
        ],
    }


def _purge_message(message: Message, now: datetime, recipient_too: bool) -> None:
    message.body = ERASED
    message.subject = ""
    if recipient_too:
        message.recipient = ERASED
    if message.body_purged_at is None:
        message.body_purged_at = now


def anonymise_request(session: Session, request: Request, now: datetime, reason: str) -> bool:
    """Remove identity and contact, keep the statistics; False if it was already done."""
    if request.anonymised_at is not None:
        return False
    for person in request.persons:
        person.first_name = ""
        person.last_name = ""
        if person.birth_date is not None:
            # The year is enough for the age bands of the indicators (70+, under 6).
            person.birth_date = date(person.birth_date.year, 1, 1)
    for field in ("phone", "email", "street", "best_time", "reason_detail", "comment"):
        setattr(request, field, "")
    # The home's coordinates can point at one house; the commune is kept instead.
    request.lat = None
    request.lon = None
    # A hash of the answers is still personal data: with a guess at them, it confirms them.
    request.submission_fingerprint = None
    for event in request.events:
        event.note = ""
    # A message still waiting would otherwise go out with its body and recipient erased.
    withhold_queued(session, request.id, ERASED_BEFORE_SENDING)
    for message in session.scalars(select(Message).where(Message.request_id == request.id)):
        _purge_message(message, now, recipient_too=True)
    request.anonymised_at = now
    record_event(request, "anonymised", now=now, actor_label="system", note=reason)
    return True


def erase_request(
    session: Session,
    request: Request,
    now: datetime,
    *,
    reason: str,
    actor_user_id: int | None = None,
    actor_label: str = "",
) -> bool:
    """Withdraw the request if it is still open, then anonymise it; False if already done."""
    if request.anonymised_at is not None:
        return False
    if request.status in OPEN_STATUSES:
        change_status(
            request,
            Status.WITHDRAWN,
            now=now,
            actor_user_id=actor_user_id,
            actor_label=actor_label,
            note="effacement demandé",
        )
    return anonymise_request(session, request, now, reason=reason)


@dataclass(frozen=True)
class Correction:
    """What a patient or a coordinator may correct; None leaves the value as it is."""

    phone: str | None = None
    email: str | None = None
    street: str | None = None
    best_time: str | None = None
    # person id -> (first name, last name)
    names: dict[int, tuple[str, str]] | None = None
    # person id -> birth date as typed ('07/03/1950', '1950-03-07')
    birth_dates: dict[int, str] | None = None


# How the flash says where the preference went: "le canal préféré passe à l'e-mail".
_TO_CHANNEL = {"sms": "au SMS", "email": "à l'e-mail", "phone": "à l'appel téléphonique"}


def _reachable_channel(request: Request) -> str:
    """The preferred channel if it still reaches the person, else the one that does.

    A landline cannot receive the SMS the person chose; the e-mail, if any, is the written
    channel left, else the coordinator calls."""
    can_sms = bool(request.phone) and is_mobile(request.phone)
    channel = request.preferred_channel
    if (channel == "sms" and not can_sms) or (channel == "phone" and not request.phone):
        return "email" if request.email else "phone"
    if channel == "email" and not request.email:
        return "sms" if can_sms else "phone"
    return channel


def channel_switch_notice(before: str, request: Request) -> str:
    """Why the preferred channel changed from `before` by a rectification, in French."""
    if before == "email":
        why = "L'e-mail a été retiré"
    elif request.phone:
        why = "Le nouveau numéro est un fixe, il ne reçoit pas de SMS"
    else:
        why = "Le téléphone a été retiré"
    return f"{why} : le canal préféré passe {_TO_CHANNEL[request.preferred_channel]}."


def _contact_values(correction: Correction, errors: list[CorrectionError]) -> dict[str, str]:
    """The request's corrected contact fields, normalised; refusals added to `errors`."""
    new: dict[str, str] = {}
    if correction.phone is not None:
        try:
            new["phone"] = normalise_phone(correction.phone) if correction.phone.strip() else ""
        except ValueError as exc:
            errors.append(CorrectionError("phone", str(exc)))
    if correction.email is not None:
        try:
            new["email"] = normalise_email(correction.email) if correction.email.strip() else ""
        except ValueError as exc:
            errors.append(CorrectionError("email", str(exc)))
    if correction.street is not None:
        new["street"] = correction.street.strip()[:200]
    if correction.best_time is not None:
        new["best_time"] = correction.best_time.strip()[:100]
    return new


def _person_values(
    persons: dict[int, Person], correction: Correction, today: date, errors: list[CorrectionError]
) -> dict[int, dict[str, Any]]:
    """Person id -> corrected fields (first_name, last_name, birth_date); refusals to `errors`."""
    new: dict[int, dict[str, Any]] = {}
    for person_id in {*(correction.names or {}), *(correction.birth_dates or {})}:
        if person_id not in persons:
            errors.append(
                CorrectionError("persons", "Cette personne ne fait pas partie de la demande.")
            )
    for person_id, (first, last) in (correction.names or {}).items():
        if person_id not in persons:
            continue
        for field, typed, missing in (
            ("first_name", first, "Indiquez le prénom."),
            ("last_name", last, "Indiquez le nom."),
        ):
            value = typed.strip()
            if not value:
                errors.append(CorrectionError(field, missing, person_id))
            elif len(value) > LIMITS[field]:
                too_long = f"Ce texte est trop long : {LIMITS[field]} caractères au plus."
                errors.append(CorrectionError(field, too_long, person_id))
            else:
                new.setdefault(person_id, {})[field] = value
    for person_id, typed in (correction.birth_dates or {}).items():
        if person_id not in persons:
            continue
        if not typed.strip():
            # A birth date never given stays unknown; one that was given cannot be blanked:
            # the priority criteria (70 and over, under 6) are read from it.
            if persons[person_id].birth_date is not None:
                errors.append(
                    CorrectionError("birth_date", "Indiquez la date de naissance.", person_id)
                )
            continue
        try:
            new.setdefault(person_id, {})["birth_date"] = parse_birth_date(typed, today)
        except ValueError as exc:
            errors.append(CorrectionError("birth_date", str(exc), person_id))
    return new


def correct_request(
    session: Session,
    request: Request,
    correction: Correction,
    now: datetime,
    *,
    actor_user_id: int | None = None,
    actor_label: str = "",
) -> list[str]:
    """Apply a rectification; raise InvalidCorrection, listing every refusal, before changing
    anything.

    Returns the names of the corrected fields (recorded, never their values): the request's,
    `preferred_channel` when the corrected contact no longer reaches the preferred one, and
    `person:<id>:<field>` for a person's."""
    if request.anonymised_at is not None:
        raise AlreadyAnonymised()
    errors: list[CorrectionError] = []
    new = _contact_values(correction, errors)
    if (
        ("phone" in new or "email" in new)
        and not any(e.field in ("phone", "email") for e in errors)
        and not (new.get("phone", request.phone) or new.get("email", request.email))
    ):
        errors.append(
            CorrectionError("phone", "Gardez au moins un téléphone ou une adresse e-mail.")
        )
    persons = {person.id: person for person in request.persons}
    # "Not in the future" is said of the day in France, where the coordinator is.
    people = _person_values(persons, correction, in_paris(now).date(), errors)
    if errors:
        raise InvalidCorrection(errors)

    changed = [field for field, value in new.items() if getattr(request, field) != value]
    for field in changed:
        setattr(request, field, new[field])
    if {"phone", "email"} & set(changed):
        follow_contact_change(session, request)
        reachable = _reachable_channel(request)
        if reachable != request.preferred_channel:
            request.preferred_channel = reachable
            changed.append("preferred_channel")
    dates_changed = False
    for person_id, values in people.items():
        person = persons[person_id]
        for field, value in values.items():
            if getattr(person, field) != value:
                setattr(person, field, value)
                changed.append(f"person:{person_id}:{field}")
                dates_changed = dates_changed or field == "birth_date"
    if dates_changed:
        # The priority flags (70 and over, under 6) were read from the wrong date: the queue's
        # order and the indicators follow the corrected one.
        store_household(request)
    if changed:
        request.updated_at = now
        record_event(
            request,
            "rectified",
            now=now,
            actor_user_id=actor_user_id,
            actor_label=actor_label,
            note=", ".join(changed),
        )
    return changed


def limit_processing(
    session: Session,
    request: Request,
    now: datetime,
    *,
    actor_user_id: int | None = None,
    actor_label: str = "",
) -> bool:
    """Freeze the request (kept, not worked on); False if it was already limited.

    While limited, workflow.ensure_workable refuses every action on the request but the
    patient's withdrawal and an erasure; lift_limitation ends it."""
    if request.processing_limited_at is not None:
        return False
    request.processing_limited_at = now
    # The doctors' asks still open are cancelled, as when a request is closed: their links
    # stop working, so no doctor can accept (reserve a place, learn who the patient is)
    # while the request is frozen, and a cancelled ask does not count as asked, so after a
    # lifting the coordinator may ask the same doctors again. Nothing is sent to them
    # (cancel_open_contacts sends nothing): a message about the patient to a third party
    # would itself be processing; a doctor who follows the link is told it is no longer
    # needed. It also stops a running cascade; lifting does not restart it, the
    # coordinator decides.
    cancelled = cancel_open_contacts(session, request, now)
    # Messages still waiting in the outbox for this request (a proposal queued a moment ago)
    # are not sent either; the dispatcher never takes a failed message, and the outbox
    # viewer's retry refuses one of a limited request.
    withhold_queued(session, request.id, WITHHELD)
    note = f"{cancelled} sollicitation(s) de médecin annulée(s)" if cancelled else ""
    record_event(
        request,
        "limited",
        now=now,
        actor_user_id=actor_user_id,
        actor_label=actor_label,
        note=note,
    )
    return True


def lift_limitation(
    request: Request, now: datetime, *, actor_user_id: int | None = None, actor_label: str = ""
) -> bool:
    """The patient asked to lift the limitation: the request can be worked on again; False
    if it was not limited."""
    if request.processing_limited_at is None:
        return False
    request.processing_limited_at = None
    request.updated_at = now
    record_event(
        request, "limitation_lifted", now=now, actor_user_id=actor_user_id, actor_label=actor_label
    )
    return True


def process_rights_request(
    session: Session,
    request: Request,
    kind: RightKind,
    now: datetime,
    *,
    user_id: int,
    ip: str = "",
    note: str = "",
) -> None:
    """Record that a coordinator handled a rights request (event and audit entry).

    Access is recorded when the copy is produced; erasure, limitation and its lifting are
    applied here; rectification is applied by correct_request before calling this."""
    if kind is RightKind.ERASURE:
        erase_request(session, request, now, reason="rights_request", actor_user_id=user_id)
    elif kind is RightKind.LIMITATION:
        limit_processing(session, request, now, actor_user_id=user_id)
    elif kind is RightKind.LIMITATION_LIFTED:
        lift_limitation(request, now, actor_user_id=user_id)
    record_event(
        request,
        f"rights_{kind.value}",
        now=now,
        actor_user_id=user_id,
        # After an erasure the note could carry what was just removed: keep only the kind.
        note="" if kind is RightKind.ERASURE else note.strip()[:500],
    )
    audit.record(
        session,
        f"rights.{kind.value}",
        territory_id=request.territory_id,
        user_id=user_id,
        object_type="request",
        object_id=request.id,
        ip=ip,
    )
