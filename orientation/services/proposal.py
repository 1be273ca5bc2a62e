"""The proposal to the patient (fiche 1): the chosen doctors by SMS, e-mail or phone; then
oriented or closed. The service proposes, never assigns: the patient stays free to choose.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.ranking import haversine_km
from models import Channel, Doctor, DoctorSite, Request, Status, Territory
from notifications.outbox import queue_message
from orientation.services.contact import display_phone
from orientation.services.doctor_contacts import Links, accepted_doctors, cancel_open_contacts
from orientation.services.matching import patient_point
from orientation.services.message_templates import render_for_territory
from orientation.services.request_case import CaseError
from orientation.services.workflow import change_status, ensure_workable, record_event

PROPOSABLE = (Status.ELIGIBLE, Status.IN_PROGRESS, Status.DOCTORS_CONTACTED, Status.PROPOSED)


class CallOutcome(enum.StrEnum):
    AGREES = "agrees"  # the patient will book with the doctor
    THINKS = "thinks"  # told the doctors, will decide
    DECLINES = "declines"  # none suits
    NO_ANSWER = "no_answer"  # not reached; try again


CALL_OUTCOME_LABELS = {
    CallOutcome.AGREES: "joint, accepte la proposition",
    CallOutcome.THINKS: "joint, réfléchit",
    CallOutcome.DECLINES: "joint, aucune proposition ne convient",
    CallOutcome.NO_ANSWER: "pas de réponse",
}


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
        "follow_url": links.patient_follow(request.id),
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
    places: dict[int, list[tuple[str, str, float | None, float | None]]] = {
        d.id: [(d.practice_address, d.postal_code, d.lat, d.lon)] for d in doctors
    }
    if places:
        for site in session.scalars(
            select(DoctorSite).where(DoctorSite.doctor_id.in_(places)).order_by(DoctorSite.id)
        ):
            places[site.doctor_id].append((site.address, site.postal_code, site.lat, site.lon))

    home = patient_point(request)  # the point the ranking measured from

    def nearest(options: list[tuple[str, str, float | None, float | None]]) -> tuple[str, str]:
        placed = [o for o in options if o[2] is not None and o[3] is not None]
        if home is None or len(placed) < 2:
            return options[0][0], options[0][1]
        lats, lons = np.array([o[2] for o in placed]), np.array([o[3] for o in placed])
        km = haversine_km(home[0], home[1], lats, lons)
        best = placed[int(km.argmin())]
        return best[0], best[1]

    return {
        doctor_id: ", ".join(x for x in nearest(options) if x)
        for doctor_id, options in places.items()
    }


def _doctor_note(doctors: list[tuple[Doctor, float | None]]) -> str:
    return ", ".join(f"{d.display_name} ({_distance(km)})" for d, km in doctors)


def _to_proposed(request: Request, now: datetime, user_id: int | None, note: str) -> None:
    if request.status == Status.PROPOSED:
        record_event(request, "proposal", now=now, actor_user_id=user_id, note=note)
    else:
        event = change_status(request, Status.PROPOSED, now=now, actor_user_id=user_id, note=note)
        event.kind = "proposal"


def send_proposal(
    session: Session,
    territory: Territory,
    request: Request,
    data: ProposalInput,
    *,
    now: datetime,
    user_id: int,
) -> list[str]:
    """Queue the proposal by SMS and/or e-mail; status proposed. Returns the channels used.

    Raise ProcessingLimited when the patient limited the processing (RGPD art. 18)."""
    ensure_workable(request)
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
    if errors:
        field, message = next(iter(errors.items()))
        raise CaseError(message, field)
    sent = []
    for channel, recipient, subject, body in (
        (Channel.SMS, request.phone, "", data.sms_body.strip()),
        (Channel.EMAIL, request.email, data.email_subject.strip(), data.email_body.strip()),
    ):
        if channel not in data.channels:
            continue
        # The same text sent twice (a double click, a re-sent form) is queued once.
        digest = hashlib.sha256(f"{subject}\n{body}".encode()).hexdigest()[:16]
        queue_message(
            session,
            territory_id=request.territory_id,
            channel=channel,
            recipient=recipient,
            subject=subject or f"Votre demande de médecin traitant ({request.reference})",
            body=body,
            purpose="proposal",
            idempotency_key=f"proposal-{request.id}-{channel.value}-{digest}",
            request_id=request.id,
        )
        sent.append(channel.value)
    how = " et ".join("SMS" if c == "sms" else "e-mail" for c in sent)
    _to_proposed(request, now, user_id, f"Proposition par {how} : {_doctor_note(data.doctors)}")
    request.cascade_state = "" if request.cascade_state == "exhausted" else request.cascade_state
    return sent


def record_phone_call(
    request: Request,
    outcome: CallOutcome,
    doctors: list[tuple[Doctor, float | None]],
    *,
    note: str,
    now: datetime,
    user_id: int,
) -> None:
    """A proposal made on the phone, with its outcome (refused while processing is limited)."""
    ensure_workable(request)
    if request.status not in PROPOSABLE:
        raise CaseError("On ne peut pas enregistrer d'appel pour une demande à ce statut.")
    text = f"Appel : {CALL_OUTCOME_LABELS[outcome]}."
    if doctors:
        text += f" Médecins proposés : {_doctor_note(doctors)}."
    if note.strip():
        text += f" {note.strip()}"
    if outcome is CallOutcome.NO_ANSWER or not doctors:
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
    reason = reason.strip()
    if len(reason) < 3:
        raise CaseError("Indiquez la raison de la clôture.", "reason")
    if request.status in (Status.ORIENTED, Status.CLOSED, Status.WITHDRAWN):
        raise CaseError("Cette demande est déjà terminée.")
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
