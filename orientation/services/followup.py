"""Follow-up after a proposal (suivi): did the patient get a first appointment and declare the GP?

A configurable number of days after the proposal (Territory.follow_up_days, 30 by default) the
patient gets one message with a signed link. Their answer moves the request to oriented, or
back to the coordinator's queue with a flag (Request.needs_follow_up) and an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Request, RequestEvent, Status, Territory
from notifications.outbox import queue_message
from orientation.links import LinkInvalid, LinkPurpose, LinkSigner
from orientation.services import audit
from orientation.services.message_templates import render_for_territory
from orientation.services.patient_links import AlreadyAnswered, patient_channel
from orientation.services.workflow import change_status, ensure_workable, record_event

PATIENT = "patient"


@dataclass(frozen=True)
class FollowUpAnswer:
    got_appointment: bool
    declared_doctor: bool  # déclaration de médecin traitant done


def due_requests(session: Session, territory: Territory, now: datetime) -> list[Request]:
    """Proposed requests of this territory whose last proposal is old enough, never asked;
    not those whose processing the patient limited (RGPD art. 18)."""
    proposed_at = (
        select(RequestEvent.request_id.label("rid"), func.max(RequestEvent.at).label("at"))
        .where(RequestEvent.kind == "status", RequestEvent.to_status == Status.PROPOSED.value)
        .group_by(RequestEvent.request_id)
        .subquery()
    )
    cutoff = now - timedelta(days=territory.follow_up_days)
    return list(
        session.scalars(
            select(Request)
            .join(proposed_at, proposed_at.c.rid == Request.id)
            .where(
                Request.territory_id == territory.id,
                Request.status == Status.PROPOSED,
                Request.follow_up_sent_at.is_(None),
                Request.anonymised_at.is_(None),
                Request.processing_limited_at.is_(None),
                proposed_at.c.at <= cutoff,
            )
            .order_by(Request.id)
        )
    )


def send_follow_ups(session: Session, signer: LinkSigner, base_url: str, now: datetime) -> int:
    """Queue one follow-up message per due request, once; commit per territory. Returns count."""
    sent = 0
    for territory in session.scalars(select(Territory).order_by(Territory.id)).all():
        for request in due_requests(session, territory, now):
            request.follow_up_sent_at = now  # whatever happens next, never asked twice
            reach = patient_channel(request)
            if reach is None:
                request.needs_follow_up = True
                record_event(request, "follow_up_no_contact", now=now, actor_label="system",
                             note="Suivi : pas de téléphone ni d'e-mail, à appeler.")  # fmt: skip
                continue
            channel, recipient = reach
            token = signer.make(LinkPurpose.PATIENT_FOLLOW_UP, request.id)
            message = render_for_territory(
                session,
                territory.id,
                "followup",
                channel,
                {
                    "cpts": territory.name,
                    "reference": request.reference,
                    "link": f"{base_url.rstrip('/')}/suivi/rendez-vous/{token}",
                    "contact_phone": territory.contact_phone,
                },
            )
            queue_message(
                session, territory_id=territory.id, channel=channel, recipient=recipient,
                subject=message.subject, body=message.body, purpose="follow_up",
                idempotency_key=f"follow-up:{request.id}", request_id=request.id,
            )  # fmt: skip
            record_event(request, "follow_up_sent", now=now, actor_label="system")
            sent += 1
        session.commit()
    return sent


def open_follow_up(session: Session, signer: LinkSigner, token: str) -> Request:
    """The request behind a follow-up link; raise LinkInvalid, LinkExpired, AlreadyAnswered,
    or ProcessingLimited (a link sent before the patient limited the processing)."""
    claims = signer.read(LinkPurpose.PATIENT_FOLLOW_UP, token)
    request = session.get(Request, claims.subject_id)
    if request is None or request.anonymised_at is not None:
        raise LinkInvalid()
    if request.follow_up_answered_at is not None:
        raise AlreadyAnswered()
    ensure_workable(request)
    return request


def answer_follow_up(
    session: Session, request: Request, answer: FollowUpAnswer, now: datetime, *, ip: str = ""
) -> Status:
    """Record the patient's answer and move the request (audited); commits. Returns the new
    status.

    Raise ProcessingLimited, changing nothing, while the processing is limited: the answer
    would move the request and put it back in the coordinator's queue."""
    if request.follow_up_answered_at is not None:
        raise AlreadyAnswered()
    ensure_workable(request)
    request.follow_up_answered_at = now
    note = (
        f"Suivi : premier rendez-vous {'obtenu' if answer.got_appointment else 'non obtenu'}, "
        f"déclaration de médecin traitant {'faite' if answer.declared_doctor else 'non faite'}."
    )
    record_event(request, "follow_up_answer", now=now, actor_label=PATIENT, note=note)
    # The declaration is often the missing step: without it the coordinator calls back.
    request.needs_follow_up = not (answer.got_appointment and answer.declared_doctor)
    if request.status is Status.PROPOSED:
        if answer.got_appointment:
            change_status(request, Status.ORIENTED, now=now, actor_label=PATIENT, note=note)
        else:
            change_status(request, Status.IN_PROGRESS, now=now, actor_label=PATIENT, note=note)
    audit.record(
        session, "request.follow_up_answered", territory_id=request.territory_id,
        actor_label=PATIENT, object_type="request", object_id=request.id, ip=ip,
        status=Status(request.status).value,
    )  # fmt: skip
    session.commit()
    return Status(request.status)
