"""What a person does through their private link: see, complete, withdraw, forward.

The link is signed for one purpose (LinkPurpose.PATIENT_REQUEST) and names one request; every
read and change through it is audited with the actor "patient".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, Channel, Request, Status, Territory
from notifications.outbox import readdress_queued, withhold_queued
from orientation.links import LinkInvalid, LinkPurpose, LinkSigner
from orientation.services import audit
from orientation.services.contact import (
    InvalidEmail,
    InvalidPhone,
    is_mobile,
    normalise_email,
    normalise_phone,
)
from orientation.services.doctor_contacts import release_unchosen_places
from orientation.services.workflow import change_status, record_event

MAX_COMMENT = 2000
FORWARDED = "transmise à"  # how a forwarded request's closed_reason begins
WITHDRAWN_BEFORE_SENDING = "Non envoyé : la personne a retiré sa demande."
SUPERSEDED = (
    "Non envoyé : la demande a été transmise ; l'accusé de réception de l'autre CPTS le remplace."
)


class FollowUpInvalid(ValueError):
    """A change asked through the link is refused: `errors` by field, in French."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(errors))
        self.errors = errors


class RequestErased(LinkInvalid):
    """The link is genuine but its request was erased (at the person's request or at the end
    of the retention period): nothing of it is left to show but when, and where to turn."""

    def __init__(self, erased_at: datetime, territory_id: int) -> None:
        super().__init__()
        self.erased_at = erased_at
        self.territory_id = territory_id


def request_of_token(session: Session, signer: LinkSigner, token: str) -> Request:
    """The request a private link names; raise LinkInvalid (or LinkExpired) otherwise, and
    RequestErased when it was erased."""
    claims = signer.read(LinkPurpose.PATIENT_REQUEST, token)
    request = session.get(Request, claims.subject_id)
    # A link of before a new one was sent (patient_link_renewal) is as unknown as a forged one,
    # checked first: whoever kept it must not even learn that the request was erased since.
    if request is None or claims.version != request.link_version:
        raise LinkInvalid()
    if request.anonymised_at is not None:
        raise RequestErased(request.anonymised_at, request.territory_id)
    return request


def audit_read(session: Session, request: Request, ip: str, page: str = "") -> None:
    """The person opened a page naming their request (`page`: which, when not /suivi); commits."""
    details: dict[str, Any] = {"page": page} if page else {}
    audit.record(
        session, "request.read_by_patient", territory_id=request.territory_id,
        actor_label="patient", object_type="request", object_id=request.id, ip=ip, **details,
    )  # fmt: skip
    session.commit()


def complete_request(
    session: Session, request: Request, *, comment: str, phone: str, email: str, now: datetime,
    ip: str = "",
) -> None:  # fmt: skip
    """Add a comment and/or correct the contact details; raise FollowUpInvalid."""
    errors: dict[str, str] = {}
    if request.status not in OPEN_STATUSES:
        raise FollowUpInvalid({"comment": "Cette demande est close : elle ne peut plus changer."})
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        errors["comment"] = f"Ce texte est trop long : {MAX_COMMENT} caractères au plus."
    new_phone, new_email = request.phone, request.email
    if phone.strip():
        try:
            new_phone = normalise_phone(phone)
        except InvalidPhone as exc:
            errors["phone"] = str(exc)
    if email.strip():
        try:
            new_email = normalise_email(email)
        except InvalidEmail as exc:
            errors["email"] = str(exc)
    if errors:
        raise FollowUpInvalid(errors)
    changed = []
    if new_phone != request.phone:
        request.phone = new_phone
        changed.append("téléphone")
    if new_email != request.email:
        request.email = new_email
        changed.append("e-mail")
    if changed:
        record_event(request, "contact_corrected", now=now, actor_label="patient",
                     note="corrigé : " + ", ".join(changed))  # fmt: skip
        follow_contact_change(session, request)
    if comment:
        record_event(request, "patient_comment", now=now, actor_label="patient", note=comment)
    if not changed and not comment:
        raise FollowUpInvalid({"comment": "Écrivez un message ou corrigez vos coordonnées."})
    request.updated_at = now
    audit.record(
        session, "request.completed_by_patient", territory_id=request.territory_id,
        actor_label="patient", object_type="request", object_id=request.id, ip=ip,
        changed=changed, comment=bool(comment),
    )  # fmt: skip
    session.commit()


def follow_contact_change(session: Session, request: Request) -> None:
    """After a correction of the request's phone or e-mail: what still waits in the outbox for
    the person (the acknowledgement with the private link, a proposal) goes to the corrected
    contact, not to the number or address they said was wrong."""
    mobile = request.phone if request.phone and is_mobile(request.phone) else ""
    readdress_queued(session, request.id, Channel.SMS, mobile)
    readdress_queued(session, request.id, Channel.EMAIL, request.email)


def withdraw_request(session: Session, request: Request, *, now: datetime, ip: str = "") -> None:
    """The person no longer needs help: the request is withdrawn (kept for the indicators).

    Nothing about it is sent any more: what still waits in the outbox (a proposal, a doctor's
    ask) is held back; a doctor opening an ask sent before is told it is no longer needed."""
    if request.status not in OPEN_STATUSES:
        return
    change_status(request, Status.WITHDRAWN, now=now, actor_label="patient",
                  note="retirée par la personne")  # fmt: skip
    withhold_queued(session, request.id, WITHDRAWN_BEFORE_SENDING)
    release_unchosen_places(session, request, now)  # doctors who accepted it get their place
    audit.record(
        session, "request.withdrawn_by_patient", territory_id=request.territory_id,
        actor_label="patient", object_type="request", object_id=request.id, ip=ip,
    )  # fmt: skip
    session.commit()


def close_as_forwarded(
    session: Session,
    request: Request,
    target: Territory,
    new_reference: str,
    *,
    now: datetime,
    actor_user_id: int | None = None,
) -> None:
    """Close the out-of-territory request once a copy went to the CPTS that covers the commune
    (sent by the person, or by the staff member `actor_user_id`)."""
    change_status(request, Status.CLOSED, now=now, actor_user_id=actor_user_id,
                  actor_label="patient" if actor_user_id is None else "",
                  note=f"{FORWARDED} {target.name} ({new_reference})")  # fmt: skip
    request.closed_reason = f"{FORWARDED} {target.name}"[:200]
    # Told once, by the CPTS that now holds the request: this one's acknowledgement (its own
    # reference, "hors territoire"), if it still waits in the outbox, is not sent.
    withhold_queued(session, request.id, SUPERSEDED, purpose="acknowledgement")


def was_forwarded(request: Request) -> bool:
    """Closed because a copy went to the CPTS that covers its commune."""
    return request.status is Status.CLOSED and request.closed_reason.startswith(FORWARDED)


def forwarded_copy(session: Session, request: Request) -> Request | None:
    """The request a forwarded one goes on as at the other CPTS (its reference is the one to
    give from now on); None if it was not forwarded, or was anonymised since.

    For the person's own link only: the copy belongs to the other CPTS. Read by a query rather
    than `session.get` (which may answer from the identity map), so that a session scoped to
    one CPTS, as a coordinator's is, never gets the other CPTS's request through it."""
    if request.forwarded_to_id is None:
        return None
    return session.scalar(select(Request).where(Request.id == request.forwarded_to_id))
