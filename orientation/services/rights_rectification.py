"""Right to rectification (RGPD article 16): contacts, names and birth dates.

Every wrong value is refused on its field before anything changes, so a coordinator never
saves half a correction. What follows a correction is done here too: the outbox goes to the
corrected contact, the preferred channel moves when the new contact cannot carry it, and the
priority flags (70 and over, under 6) follow a corrected birth date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from models import Person, Request
from orientation.services.contact import is_mobile, normalise_email, normalise_phone
from orientation.services.household import store_household
from orientation.services.intake_validation import LIMITS, parse_birth_date
from orientation.services.local_time import in_paris
from orientation.services.patient_link import follow_contact_change
from orientation.services.workflow import record_event


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
