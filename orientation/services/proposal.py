"""The proposal to the patient (fiche 1): the chosen doctors by SMS, e-mail or phone; then
oriented or closed. The service proposes, never assigns: the patient stays free to choose.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from geo.ranking import haversine_km
from models import Channel, Doctor, DoctorSite, Message, Request, Status, Territory
from notifications.outbox import queue_message
from orientation.services.contact import display_phone
from orientation.services.doctor_contacts import Links, accepted_doctors, cancel_open_contacts
from orientation.services.local_time import in_paris
from orientation.services.matching import RankedDoctor, patient_point
from orientation.services.message_templates import render_for_territory
from orientation.services.request_case import CaseError, ensure_open
from orientation.services.workflow import change_status, ensure_workable, record_event

PROPOSABLE = (Status.ELIGIBLE, Status.IN_PROGRESS, Status.DOCTORS_CONTACTED, Status.PROPOSED)


class CallOutcome(enum.StrEnum):
    AGREES = "agrees"  # the patient will book with the doctor
    THINKS = "thinks"  # told the doctors, will decide
    DECLINES = "declines"  # none suits
    NO_ANSWER = "no_answer"  # not reached; try again
    REACHED = "reached"  # after orientation: the patient was reached (the note says more)


CALL_OUTCOME_LABELS = {
    CallOutcome.AGREES: "joint, accepte la proposition",
    CallOutcome.THINKS: "joint, réfléchit",
    CallOutcome.DECLINES: "joint, aucune proposition ne convient",
    CallOutcome.NO_ANSWER: "pas de réponse",
    CallOutcome.REACHED: "joint",
}
PROPOSAL_CALL_OUTCOMES = (
    CallOutcome.AGREES,
    CallOutcome.THINKS,
    CallOutcome.DECLINES,
    CallOutcome.NO_ANSWER,
)
# An oriented request is settled, but the follow-up flags those whose patient has not declared
# the doctor yet ("à rappeler après le suivi"): the coordinator calls them back and notes the
# call. Such a call proposes nothing and changes nothing else, so only these outcomes fit.
FOLLOW_UP_CALL_OUTCOMES = (CallOutcome.REACHED, CallOutcome.NO_ANSWER)

CHANNEL_WORDS = {Channel.SMS: "SMS", Channel.EMAIL: "e-mail"}


@dataclass(frozen=True)
class Draft:
    sms: str
    email_subject: str
    email_body: str


@dataclass(frozen=True)
class ProposalInput:
    doctors: list[tuple[Doctor, float | None]]
    channels: frozenset[Channel]
    sms_body: str = ""
    email_subject: str = ""
    email_body: str = ""
    # The form's own token: the same form posted twice (a double click) is sent once.
    nonce: str = ""
    # Ticked to send a proposal again when one was already sent (never by accident).
    again: bool = False


@dataclass(frozen=True)
class SentProposal:
    """The latest proposal sent by message: when, and by which channels."""

    at: datetime
    channels: list[Channel]

    @property
    def how(self) -> str:
        return ", ".join(CHANNEL_WORDS[c] for c in self.channels)


def _distance(km: float | None) -> str:
    if km is None:
        return "distance inconnue"
    return f"{km:.1f} km".replace(".", ",")


def draft_proposal(
    session: Session,
    territory: Territory,
    request: Request,
    doctors: list[tuple[Doctor, float | None]],
    links: Links,
) -> Draft:
    """The texts the coordinator starts from (per-CPTS templates), to edit before sending."""
    addresses = _addresses_nearest(session, request, [d for d, _ in doctors])
    context = {
        "territory_name": territory.name,
        "territory_phone": territory.contact_phone,
        "reference": request.reference,
        "follow_url": links.patient_follow(request),
        "doctors": [
            {
                "name": d.display_name,
                "address": addresses[d.id],
                "phone": display_phone(d.phone) if d.phone else "non communiqué",
                "distance": _distance(km),
            }
            for d, km in doctors
        ],
    }
    sms = render_for_territory(session, territory.id, "proposal", Channel.SMS, context)
    email = render_for_territory(session, territory.id, "proposal", Channel.EMAIL, context)
    return Draft(sms=sms.body, email_subject=email.subject, email_body=email.body)


def _addresses_nearest(session: Session, request: Request, doctors: list[Doctor]) -> dict[int, str]:
    """Each doctor's practice nearest the household: the site the ranking measured from.

    A doctor with secondary sites is ranked by the nearest one; the patient must be sent that
    site's address, not the main practice's, beside the distance quoted.
    """
    return {
        doctor_id: place[0]
        for doctor_id, place in _nearest_places(session, request, doctors).items()
    }


def with_distances(
    session: Session, request: Request, doctors: list[Doctor]
) -> list[tuple[Doctor, float | None]]:
    """The doctors with their distance from the household, as the ranking measures it.

    Worked out here, never taken from the form: a hidden field may be missing (the phone-call
    form has none) or stale, and the distance is quoted to the patient."""
    places = _nearest_places(session, request, doctors)
    return [(d, places[d.id][1]) for d in doctors]


def _nearest_places(
    session: Session, request: Request, doctors: list[Doctor]
) -> dict[int, tuple[str, float | None]]:
    """Each doctor's practice nearest the household: its full address and the distance in km
    (None when the household or every practice of the doctor is not placed)."""
    places: dict[int, list[tuple[str, float | None, float | None]]] = {
        d.id: [(full_address(d.practice_address, d.postal_code, d.commune_insee), d.lat, d.lon)]
        for d in doctors
    }
    if places:
        for site in session.scalars(
            select(DoctorSite).where(DoctorSite.doctor_id.in_(places)).order_by(DoctorSite.id)
        ):
            address = full_address(site.address, site.postal_code, site.commune_insee)
            places[site.doctor_id].append((address, site.lat, site.lon))

    home = patient_point(request)  # the point the ranking measured from

    def nearest(options: list[tuple[str, float | None, float | None]]) -> tuple[str, float | None]:
        placed = [o for o in options if o[1] is not None and o[2] is not None]
        if home is None or not placed:
            return options[0][0], None
        lats, lons = np.array([o[1] for o in placed]), np.array([o[2] for o in placed])
        km = haversine_km(home[0], home[1], lats, lons)
        best = int(km.argmin())
        return placed[best][0], float(km[best])

    return {doctor_id: nearest(options) for doctor_id, options in places.items()}


def commune_name(postal_code: str, insee: str | None) -> str:
    """The commune's name from the gazetteer: by INSEE code, else by a postal code that only
    one commune uses ("" when unknown or ambiguous)."""
    commune = gazetteer().get(insee) if insee else None
    if commune is None:
        candidates = gazetteer().communes_of_postal_code(postal_code) if postal_code else []
        commune = candidates[0] if len(candidates) == 1 else None
    return commune.name if commune is not None else ""


def full_address(street: str, postal_code: str, insee: str | None) -> str:
    """'86 rue de la Gare, 59236 Frelinghien': a patient needs the commune, not only its code.

    The street line never holds the commune: the doctor's card and the imports keep the postal
    code and the commune in their own columns."""
    town = " ".join(x for x in (postal_code, commune_name(postal_code, insee)) if x)
    return ", ".join(x for x in (street, town) if x)


def ranked_address(candidate: RankedDoctor) -> str:
    """The ranking table's address of a ranked doctor's site, with the commune's name."""
    place = candidate.site if candidate.site is not None else candidate.doctor
    return f"{candidate.address} {commune_name(place.postal_code, place.commune_insee)}".strip()


def _doctor_note(doctors: list[tuple[Doctor, float | None]]) -> str:
    return ", ".join(f"{d.display_name} ({_distance(km)})" for d, km in doctors)


def _to_proposed(request: Request, now: datetime, user_id: int | None, note: str) -> None:
    if request.status == Status.PROPOSED:
        record_event(request, "proposal", now=now, actor_user_id=user_id, note=note)
    else:
        event = change_status(request, Status.PROPOSED, now=now, actor_user_id=user_id, note=note)
        event.kind = "proposal"


def last_proposal(session: Session, request: Request) -> SentProposal | None:
    """The latest proposal sent to the patient by SMS and/or e-mail, or None."""
    messages = session.scalars(
        select(Message)
        .where(Message.request_id == request.id, Message.purpose == "proposal")
        .order_by(Message.id.desc())
    ).all()
    if not messages:
        return None
    # One sending's messages share the key's last part (see send_proposal).
    batch = [
        m for m in messages if _batch(m.idempotency_key) == _batch(messages[0].idempotency_key)
    ]
    channels = [c for c in CHANNEL_WORDS if c in {m.channel for m in batch}]
    return SentProposal(min(m.created_at for m in batch), channels)


def _batch(key: str) -> str:
    return key.rsplit("-", 1)[-1]


# The form's nonce goes into the outbox key (80 characters at most): hexadecimal, bounded.
NONCE = re.compile(r"[0-9a-f]{8,32}")


def send_proposal(
    session: Session,
    territory: Territory,
    request: Request,
    data: ProposalInput,
    *,
    now: datetime,
    user_id: int,
) -> list[Channel]:
    """Queue the proposal by SMS and/or e-mail; status proposed. Returns the channels used.

    Raise ProcessingLimited when the patient limited the processing (RGPD art. 18),
    RequestEnded when the request is settled, CaseError when the form is incomplete or when a
    proposal was already sent and sending another one is not confirmed (data.again)."""
    ensure_workable(request)
    ensure_open(request)
    errors: dict[str, str] = {}
    if request.status not in PROPOSABLE:
        raise CaseError("On ne peut pas envoyer de proposition pour une demande à ce statut.")
    if not data.doctors:
        errors["doctor_ids"] = "Choisissez au moins un médecin à proposer."
    if not data.channels:
        errors["channels"] = "Choisissez l'envoi par SMS, par e-mail ou les deux."
    if Channel.SMS in data.channels and not request.phone:
        errors["channels"] = "Le patient n'a pas donné de numéro de téléphone."
    if Channel.SMS in data.channels and not data.sms_body.strip():
        errors["sms_body"] = "Le texte du SMS est vide."
    if Channel.EMAIL in data.channels and not request.email:
        errors["channels"] = "Le patient n'a pas donné d'adresse e-mail."
    if Channel.EMAIL in data.channels and not data.email_body.strip():
        errors["email_body"] = "Le texte de l'e-mail est vide."
    # A line break in a subject would start a new header (« \r\nBcc: ... »).
    if (
        Channel.EMAIL in data.channels
        and "".join(data.email_subject.splitlines()) != data.email_subject
    ):
        errors["email_subject"] = "L'objet de l'e-mail doit tenir sur une seule ligne."
    if errors:
        field, message = next(iter(errors.items()))
        raise CaseError(message, field)
    texts = {
        Channel.SMS: (request.phone, "", data.sms_body.strip()),
        Channel.EMAIL: (request.email, data.email_subject.strip(), data.email_body.strip()),
    }
    channels = [c for c in CHANNEL_WORDS if c in data.channels]
    # One key per channel, ending with the sending's token: the form's nonce, or (a form
    # without one) the texts' digest. The same form posted twice is queued once.
    token = data.nonce if NONCE.fullmatch(data.nonce) else _digest(texts, channels)
    keys = {c: f"proposal-{request.id}-{c.value}-{token}" for c in channels}
    queued = set(
        session.scalars(
            select(Message.idempotency_key).where(Message.idempotency_key.in_(keys.values()))
        )
    )
    if queued == set(keys.values()):
        return channels  # already done by the first click: nothing more, not even an event
    previous = last_proposal(session, request)
    if previous is not None and not data.again:
        raise CaseError(
            f"Une proposition a déjà été envoyée le {in_paris(previous.at):%d/%m/%Y à %H:%M} "
            f"({previous.how}). Pour en envoyer une autre, cochez « Envoyer une nouvelle "
            "proposition ».",
            "again",
        )
    for channel in channels:
        recipient, subject, body = texts[channel]
        queue_message(
            session,
            territory_id=request.territory_id,
            channel=channel,
            recipient=recipient,
            subject=subject or f"Votre demande de médecin traitant ({request.reference})",
            body=body,
            purpose="proposal",
            idempotency_key=keys[channel],
            request_id=request.id,
        )
    how = " et ".join(CHANNEL_WORDS[c] for c in channels)
    _to_proposed(request, now, user_id, f"Proposition par {how} : {_doctor_note(data.doctors)}")
    request.cascade_state = "" if request.cascade_state == "exhausted" else request.cascade_state
    return channels


def _digest(texts: dict[Channel, tuple[str, str, str]], channels: list[Channel]) -> str:
    sent = "\n".join(f"{texts[c][1]}\n{texts[c][2]}" for c in channels)
    return hashlib.sha256(sent.encode()).hexdigest()[:16]


def call_outcomes_for(request: Request) -> tuple[CallOutcome, ...]:
    """The outcomes a coordinator may record for a call about this request."""
    return FOLLOW_UP_CALL_OUTCOMES if request.status == Status.ORIENTED else PROPOSAL_CALL_OUTCOMES


def record_phone_call(
    request: Request,
    outcome: CallOutcome | None,
    doctors: list[tuple[Doctor, float | None]],
    *,
    note: str,
    now: datetime,
    user_id: int,
) -> None:
    """A proposal made on the phone, with its outcome (refused while processing is limited);
    on an oriented request, a call back noted in the timeline only (see FOLLOW_UP_CALL_OUTCOMES).
    """
    ensure_workable(request)
    oriented = request.status == Status.ORIENTED
    if not oriented:
        ensure_open(request)
        if request.status not in PROPOSABLE:
            raise CaseError("On ne peut pas enregistrer d'appel pour une demande à ce statut.")
    if outcome is None or outcome not in call_outcomes_for(request):
        raise CaseError("Indiquez le résultat de l'appel.", "outcome")
    text = f"Appel : {CALL_OUTCOME_LABELS[outcome]}."
    if doctors and not oriented:
        text += f" Médecins proposés : {_doctor_note(doctors)}."
    if note.strip():
        text += f" {note.strip()}"
    if oriented or outcome is CallOutcome.NO_ANSWER or not doctors:
        record_event(request, "phone_call", now=now, actor_user_id=user_id, note=text)
    else:
        _to_proposed(request, now, user_id, text)


def mark_oriented(
    session: Session,
    request: Request,
    doctor_id: int | None,
    *,
    now: datetime,
    user_id: int | None = None,
    actor_label: str = "",
    note: str = "",
) -> None:
    """The patient has a médecin traitant (the doctor when known)."""
    ensure_workable(request)
    ensure_open(request)
    if request.status != Status.PROPOSED:
        raise CaseError("Une demande est orientée après l'envoi d'une proposition.")
    doctor = session.get(Doctor, doctor_id) if doctor_id is not None else None
    if doctor_id is not None and doctor is None:
        raise CaseError("Ce médecin n'existe pas dans votre CPTS.", "doctor_id")
    text = f"Orientée vers {doctor.display_name}." if doctor else "Orientée (médecin non précisé)."
    change_status(
        request,
        Status.ORIENTED,
        now=now,
        actor_user_id=user_id,
        actor_label=actor_label,
        note=f"{text} {note}".strip(),
    )
    request.oriented_doctor_id = doctor.id if doctor else None
    request.cascade_state = ""
    cancel_open_contacts(session, request, now)


def close_request(
    session: Session, request: Request, reason: str, *, now: datetime, user_id: int
) -> None:
    """Close an open request with a reason (refused while processing is limited)."""
    ensure_workable(request)
    ensure_open(request)
    reason = reason.strip()
    if len(reason) < 3:
        raise CaseError("Indiquez la raison de la clôture.", "reason")
    change_status(request, Status.CLOSED, now=now, actor_user_id=user_id, note=reason)
    request.closed_reason = reason[:200]
    request.cascade_state = ""
    cancel_open_contacts(session, request, now)


def confirm_orientation(session: Session, request: Request, now: datetime) -> None:
    """The patient confirms the proposal through their private link."""
    if request.status != Status.PROPOSED:
        raise CaseError("Il n'y a pas de proposition en attente pour cette demande.")
    accepted = accepted_doctors(session, request)
    doctor_id = accepted[0][0].id if len(accepted) == 1 else None
    mark_oriented(
        session, request, doctor_id, now=now, actor_label="patient", note="Confirmé par le patient."
    )


def doctors_by_ids(session: Session, ids: list[int]) -> list[Doctor]:
    """Doctors of the session's territory, in the given order (unknown ids dropped)."""
    found = {d.id: d for d in session.scalars(select(Doctor).where(Doctor.id.in_(ids)))}
    return [found[i] for i in ids if i in found]
