"""The proposal as the person sees it through their private link, and their answer to it.

The coordinator's proposal goes out by SMS and/or e-mail (services.proposal.send_proposal); the
message promises that the link lets the person confirm it or say it does not suit them. The
page shows the text they were sent (the e-mail's when there was one: it is the fuller), so that
a lost SMS does not lose the doctors' names and numbers, and takes either answer: confirming
orients the request (services.proposal.confirm_orientation); declining sends it back to the
coordinator, who sees why in the timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, Message, Request, Status
from orientation.services import audit
from orientation.services.request_case import CaseError
from orientation.services.workflow import change_status, ensure_workable

MAX_REASON = 1000
# Shown with the text while the person can still answer it, and after orientation as a reminder.
SHOWN_IN = frozenset({Status.PROPOSED, Status.ORIENTED})


@dataclass(frozen=True)
class ProposalShown:
    """The latest proposal's text and when it was made."""

    at: datetime
    text: str


def proposal_shown(session: Session, request: Request) -> ProposalShown | None:
    """What the latest proposal said to the person, or None (no proposal, or not any more)."""
    if request.status not in SHOWN_IN:
        return None
    latest = session.scalars(
        select(Message)
        .where(Message.request_id == request.id, Message.purpose == "proposal")
        .order_by(Message.id.desc())
        .limit(2)  # one sending: an SMS and an e-mail at most
    ).all()
    if not latest:
        return None  # proposed by phone: the call's note is the coordinator's, not for here
    # The two messages of one sending share the end of their key (services.proposal._batch).
    batch = [m for m in latest if m.idempotency_key.rsplit("-", 1)[-1]
             == latest[0].idempotency_key.rsplit("-", 1)[-1]]  # fmt: skip
    chosen = next((m for m in batch if m.channel is Channel.EMAIL), batch[0])
    return ProposalShown(at=min(m.created_at for m in batch), text=chosen.body)


def decline_proposal(
    session: Session, request: Request, *, reason: str, now: datetime, ip: str = ""
) -> None:
    """The person says the proposal does not suit them: back to the coordinator (in progress),
    with their reason in the timeline. Raise CaseError when there is no proposal to answer,
    ProcessingLimited when they limited the processing."""
    ensure_workable(request)
    if request.status is not Status.PROPOSED:
        raise CaseError("Il n'y a pas de proposition en attente pour cette demande.")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise CaseError(f"Ce texte est trop long : {MAX_REASON} caractères au plus.", "reason")
    note = "La proposition ne convient pas à la personne" + (f" : {reason}" if reason else ".")
    event = change_status(request, Status.IN_PROGRESS, now=now, actor_label="patient", note=note)
    event.kind = "proposal_declined"
    request.updated_at = now
    audit.record(
        session, "request.proposal_declined", territory_id=request.territory_id,
        actor_label="patient", object_type="request", object_id=request.id, ip=ip,
    )  # fmt: skip
