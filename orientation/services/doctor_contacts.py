"""Asking doctors whether they can take a patient, and recording their answers (fiche 2).

A doctor sees only initials, age band, commune and needs until they accept (RGPD
minimisation). Each contact carries two signed links (accept, decline); an answer is taken
once, and an accept reserves one place of the doctor's declared capacity atomically.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import (
    ContactStatus,
    Doctor,
    DoctorContact,
    Request,
    Status,
    Territory,
)
from notifications.outbox import queue_message
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.doctors import contact_route, unreachable_reason
from orientation.services.matching import needs_labels, patient_needs
from orientation.services.message_templates import render_for_territory
from orientation.services.request_case import CaseError
from orientation.services.workflow import change_status, ensure_workable, record_event

ANSWERS = ("accept", "decline")
# What the page opened from each link of the request message may record. The "Non" link
# ("Je ne peux pas") records a refusal only: an accept reserves one of the doctor's places and
# has the coordination pass the patient's identity on, which that link never offered. A doctor
# who opened it by mistake changes their mind with the "Oui" link of the same message (opening
# a link records nothing; the page says so). The "Oui" page keeps "Non" next to "Oui", as the
# answer page was designed (both buttons, the link's own one first): declining takes nothing
# and only lets the coordination ask another doctor.
ANSWERS_OFFERED: dict[str, tuple[str, ...]] = {
    "accept": ("accept", "decline"),
    "decline": ("decline",),
}
OPEN_CONTACT = (ContactStatus.ASKED,)
# A doctor's answer still counts while the request is at one of these. At PROPOSED an accept
# is still taken: the patient may not follow up the proposal, and the coordinator can then
# propose this doctor; the place comes back when the request settles without them.
ANSWERABLE = (Status.DOCTORS_CONTACTED, Status.IN_PROGRESS, Status.PROPOSED)
# The request is over: an answer is no longer needed, and places taken for it come back.
SETTLED = (Status.ORIENTED, Status.CLOSED, Status.WITHDRAWN)
RELEASED_EVENT = "doctor_place_released"


class AnswerOutcome(enum.StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    ALREADY_ANSWERED = "already_answered"  # a replayed link: nothing changes
    NO_LONGER_NEEDED = "no_longer_needed"  # expired, cancelled, or the request is limited
    ALREADY_ORIENTED = "already_oriented"  # the patient found a doctor: nothing is taken
    REQUEST_CLOSED = "request_closed"  # closed or withdrawn: nothing is taken
    NO_CAPACITY = "no_capacity"  # the doctor's declared places are all taken


@dataclass(frozen=True)
class Links:
    signer: LinkSigner
    base_url: str

    def doctor_answer(self, contact_id: int, answer: str) -> str:
        token = self.signer.make(LinkPurpose.DOCTOR_ANSWER, contact_id, 0, answer)
        return f"{self.base_url}/medecin/reponse/{token}"

    def patient_follow(self, request: Request) -> str:
        """The person's private link, at the request's current version (else it opens nothing)."""
        token = self.signer.make(LinkPurpose.PATIENT_REQUEST, request.id, request.link_version)
        return f"{self.base_url}/suivi/{token}"


@dataclass(frozen=True)
class AnonymisedCase:
    """What a doctor sees before agreeing: no name, no address, no phone."""

    initials: str
    age_bands: list[str]
    commune: str
    needs: list[str]

    def line(self) -> str:
        needs = ", ".join(self.needs) if self.needs else "pas de besoin particulier"
        return f"{self.initials}, {' ; '.join(self.age_bands)}, {self.commune}. Besoins : {needs}."


def _age_band(birth: date | None, today: date) -> str:
    if birth is None:
        return "âge non précisé"
    age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
    for limit, label in ((6, "moins de 6 ans"), (18, "6 à 17 ans"), (40, "18 à 39 ans")):
        if age < limit:
            return label
    if age < 60:
        return "40 à 59 ans"
    return "60 à 69 ans" if age < 70 else "70 ans ou plus"


def anonymised_case(request: Request, today: date) -> AnonymisedCase:
    """Initials, age bands, commune and needs of the household."""
    initials = " / ".join(
        f"{p.first_name[:1].upper()}. {p.last_name[:1].upper()}." for p in request.persons
    )
    commune = gazetteer().get(request.commune_insee) if request.commune_insee else None
    return AnonymisedCase(
        initials=initials or "—",
        age_bands=[_age_band(p.birth_date, today) for p in request.persons] or ["âge non précisé"],
        commune=commune.name if commune else request.postal_code,
        needs=needs_labels(patient_needs(request, today)),
    )


def ask_doctors(
    session: Session,
    territory: Territory,
    request: Request,
    doctors: list[tuple[Doctor, float | None]],
    *,
    links: Links,
    now: datetime,
    user_id: int | None = None,
    in_cascade: bool = False,
) -> list[DoctorContact]:
    """Create a contact per doctor and queue the anonymised message with two signed links.

    Raise ProcessingLimited, before anything is written, when the patient limited the
    processing (RGPD art. 18): a doctor asked is a third party told about the patient."""
    ensure_workable(request)
    if request.status not in (
        Status.ELIGIBLE,
        Status.IN_PROGRESS,
        Status.DOCTORS_CONTACTED,
        Status.PROPOSED,
    ):
        raise CaseError("Vérifiez d'abord que la demande est sur le territoire (statut éligible).")
    if not doctors:
        raise CaseError("Choisissez au moins un médecin à solliciter.", "doctor_ids")
    existing = session.scalars(
        select(DoctorContact).where(DoctorContact.request_id == request.id)
    ).all()
    # A doctor asked once for this household is not asked again: a refusal or a silence is
    # an answer, and a second message would be noise. Only a cancelled ask (the request moved
    # on before the doctor answered) does not count.
    pending = {c.doctor_id for c in existing if c.status is not ContactStatus.CANCELLED}
    position = max((c.position for c in existing), default=0)
    case = anonymised_case(request, now.date())
    contacts = []
    for doctor, distance in doctors:
        if doctor.id in pending:
            continue
        route = contact_route(doctor)
        if route is None:
            raise CaseError(unreachable_reason(doctor), "doctor_ids")
        position += 1
        contact = DoctorContact(
            territory_id=request.territory_id,
            request_id=request.id,
            doctor_id=doctor.id,
            position=position,
            in_cascade=in_cascade,
            distance_km=distance,
            asked_by_user_id=user_id,
            asked_at=now,
        )
        session.add(contact)
        session.flush()  # the id goes into the signed links
        channel, recipient = route
        rendered = render_for_territory(
            session,
            territory.id,
            "doctor_request",
            channel,
            {
                "territory_name": territory.name,
                "territory_phone": territory.contact_phone,
                "doctor_last_name": doctor.last_name,
                "case_line": case.line(),
                "accept_url": links.doctor_answer(contact.id, "accept"),
                "decline_url": links.doctor_answer(contact.id, "decline"),
            },
        )
        queue_message(
            session,
            territory_id=request.territory_id,
            channel=channel,
            recipient=recipient,
            subject=rendered.subject,
            body=rendered.body,
            purpose="doctor_request",
            idempotency_key=f"doctor-request-{contact.id}",
            request_id=request.id,
            doctor_id=doctor.id,
        )
        contacts.append(contact)
    if not contacts:
        raise CaseError("Ces médecins ont déjà été sollicités pour cette demande.", "doctor_ids")
    names = ", ".join(
        f"{d.display_name}" for d, _ in doctors if d.id in {c.doctor_id for c in contacts}
    )
    how = "cascade automatique" if in_cascade else "sollicitation"
    if request.status in (Status.ELIGIBLE, Status.IN_PROGRESS):
        change_status(
            request,
            Status.DOCTORS_CONTACTED,
            now=now,
            actor_user_id=user_id,
            actor_label="" if user_id else "système",
            note=f"{how} : {names}",
        )
    else:
        record_event(
            request,
            "doctors_asked",
            now=now,
            actor_user_id=user_id,
            actor_label="" if user_id else "système",
            note=f"{how} : {names}",
        )
    return contacts


@dataclass(frozen=True)
class AnswerCase:
    contact: DoctorContact
    request: Request
    doctor: Doctor
    territory: Territory


def load_answer_case(session: Session, contact_id: int) -> AnswerCase | None:
    """The contact a doctor's link names, with its request, doctor and CPTS."""
    row = session.execute(
        select(DoctorContact, Request, Doctor, Territory)
        .join(Request, Request.id == DoctorContact.request_id)
        .join(Doctor, Doctor.id == DoctorContact.doctor_id)
        .join(Territory, Territory.id == DoctorContact.territory_id)
        .where(DoctorContact.id == contact_id)
    ).first()
    return AnswerCase(*row) if row is not None else None


def answer_state(case: AnswerCase) -> AnswerOutcome | None:
    """None when the doctor can still answer; otherwise why not."""
    if case.contact.status in (ContactStatus.ACCEPTED, ContactStatus.DECLINED):
        return AnswerOutcome.ALREADY_ANSWERED
    # Said before the contact's own state: a settled request's asks are cancelled, and the
    # doctor is owed the reason (the patient found a doctor), not a bare "no longer needed".
    if case.request.status is Status.ORIENTED:
        return AnswerOutcome.ALREADY_ORIENTED
    if case.request.status in SETTLED:
        return AnswerOutcome.REQUEST_CLOSED
    # A limited request's asks are cancelled when it is limited
    # (rights_limitation.limit_processing); the check on the request as well covers an answer
    # racing that limitation.
    if (
        case.contact.status != ContactStatus.ASKED
        or case.request.processing_limited_at is not None
        or case.request.status not in ANSWERABLE
    ):
        return AnswerOutcome.NO_LONGER_NEEDED
    return None


def record_answer(session: Session, case: AnswerCase, accept: bool, now: datetime) -> AnswerOutcome:
    """Take the doctor's answer once; an accept reserves one place or is refused.

    Both updates are conditional single statements, so two answers racing (a double click,
    two coordinators' doctors sharing the last place) cannot both win: the database decides.
    The caller commits, or rolls back on NO_CAPACITY.
    """
    state = answer_state(case)
    if state is not None:
        return state
    claimed = cast(
        CursorResult[object],
        session.execute(
            update(DoctorContact)
            .where(
                DoctorContact.id == case.contact.id,
                DoctorContact.status == ContactStatus.ASKED,
                # Checked again in the statement: a request oriented or closed since it was
                # read takes no answer (no place reserved for nobody).
                DoctorContact.request_id.in_(
                    select(Request.id).where(
                        Request.id == case.request.id,
                        Request.status.in_(ANSWERABLE),
                        Request.processing_limited_at.is_(None),
                    )
                ),
            )
            .values(
                status=ContactStatus.ACCEPTED if accept else ContactStatus.DECLINED,
                answered_at=now,
            )
            .execution_options(synchronize_session=False)
        ),
    )
    if claimed.rowcount != 1:
        # Answered, or the request settled, since it was read: say which, from the database.
        session.refresh(case.contact)
        session.refresh(case.request)
        return answer_state(case) or AnswerOutcome.NO_LONGER_NEEDED
    if accept:
        reserved = cast(
            CursorResult[object],
            session.execute(
                update(Doctor)
                .where(Doctor.id == case.doctor.id, Doctor.capacity_left > 0)
                .values(capacity_left=Doctor.capacity_left - 1)
                .execution_options(synchronize_session=False)
            ),
        )
        if reserved.rowcount != 1:
            return AnswerOutcome.NO_CAPACITY
    session.refresh(case.contact)
    session.refresh(case.doctor)
    label = f"doctor:{case.doctor.id}"
    if accept:
        if case.request.cascade_state == "running":
            case.request.cascade_state = "done"
        record_event(
            case.request,
            "doctor_accepted",
            now=now,
            actor_label=label,
            note=f"{case.doctor.display_name} accepte de prendre ce patient.",
        )
        return AnswerOutcome.ACCEPTED
    record_event(
        case.request,
        "doctor_declined",
        now=now,
        actor_label=label,
        note=f"{case.doctor.display_name} ne peut pas prendre ce patient.",
    )
    return AnswerOutcome.DECLINED


def cancel_open_contacts(session: Session, request: Request, now: datetime) -> int:
    """The request is settled: unanswered contacts are cancelled (their links stop working)."""
    contacts = session.scalars(
        select(DoctorContact).where(
            DoctorContact.request_id == request.id, DoctorContact.status == ContactStatus.ASKED
        )
    ).all()
    for contact in contacts:
        contact.status = ContactStatus.CANCELLED
        contact.answered_at = now
    if request.cascade_state == "running":
        request.cascade_state = "done"
    # Orienting and closing (proposal.mark_oriented, close_request) cancel the open asks
    # here once the request is settled: the places of the doctors not chosen come back then.
    # A limitation cancels the asks of a request still open: its accepts keep their places.
    release_unchosen_places(session, request, now)
    return len(contacts)


def _released_note(doctor: Doctor) -> str:
    return f"Place rendue à {doctor.display_name} (fiche n° {doctor.id}) : non retenu."


def release_unchosen_places(session: Session, request: Request, now: datetime) -> list[Doctor]:
    """The request is settled: each doctor who accepted it and was not chosen gets the place
    their accept reserved back. Returns those doctors; does nothing on an open request.

    Oriented with no doctor named (the patient confirmed a proposal of several doctors), no
    place is given back: one of them is the patient's doctor, and a place counted twice would
    promise a patient a doctor who has none left; the coordinator corrects the card. Safe to
    call twice: a place given back is noted on the timeline and not given again.
    """
    if request.status not in SETTLED:
        return []
    if request.status is Status.ORIENTED and request.oriented_doctor_id is None:
        return []
    chosen = request.oriented_doctor_id if request.status is Status.ORIENTED else None
    done = {e.note for e in request.events if e.kind == RELEASED_EVENT}
    released = []
    for doctor, _km in accepted_doctors(session, request):
        note = _released_note(doctor)
        if doctor.id == chosen or note in done:
            continue
        session.execute(
            update(Doctor)
            .where(Doctor.id == doctor.id)
            .values(capacity_left=Doctor.capacity_left + 1)
            .execution_options(synchronize_session=False)
        )
        session.refresh(doctor)
        record_event(request, RELEASED_EVENT, now=now, actor_label="system", note=note)
        done.add(note)
        released.append(doctor)
    return released


def accepted_doctors(session: Session, request: Request) -> list[tuple[Doctor, float | None]]:
    """Doctors who accepted this request, in the order they were asked."""
    rows = session.execute(
        select(Doctor, DoctorContact.distance_km)
        .join(DoctorContact, DoctorContact.doctor_id == Doctor.id)
        .where(
            DoctorContact.request_id == request.id,
            DoctorContact.status == ContactStatus.ACCEPTED,
        )
        .order_by(DoctorContact.position)
    )
    return [(doctor, km) for doctor, km in rows]
