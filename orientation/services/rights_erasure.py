"""Right to erasure (RGPD article 17), and the anonymisation retention applies too.

Erasure anonymises the request rather than deleting it: identity and contact go, what the
indicators count stays (status, dates, commune, flags, the birth year), so a CPTS's yearly
figures do not change when a patient leaves or when retention runs.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, Message, Request, Status
from notifications.outbox import withhold_queued
from orientation.services.workflow import change_status, record_event

ERASED = "[effacé]"
ERASED_BEFORE_SENDING = "Non envoyé : les données de la demande ont été effacées."


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
    # Forwarded: the link to the copy at the other CPTS, which still names the person, would
    # tie this anonymised request to them again (the closing note naming it is gone above).
    request.forwarded_to_id = None
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
