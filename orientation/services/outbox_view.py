"""The outbox as coordinators see it: what was sent, what failed and why; retrying a failure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Message, MessageStatus, Request, Status
from notifications.dispatcher import requeue
from orientation.services import audit
from orientation.services.patient_link import was_forwarded
from orientation.services.workflow import ProcessingLimited, ensure_workable

PAGE_SIZE = 50


class MessageNotFound(LookupError):
    """No message with this id in the coordinator's CPTS."""


class KeptBack(ValueError):
    """A failed message that is not to be sent again; the message (French) says why."""


class Superseded(KeptBack):
    """The acknowledgement of a request forwarded since: the other CPTS's replaces it."""

    def __init__(self) -> None:
        super().__init__(
            "La demande a été transmise à une autre CPTS : son accusé de réception remplace "
            "celui-ci, qui n'a pas été renvoyé."
        )


class RequestWithdrawn(KeptBack):
    """The person withdrew the request, or had its data erased: nothing more is sent."""

    def __init__(self) -> None:
        super().__init__(
            "La personne a retiré sa demande ou fait effacer ses données : ce message n'a pas "
            "été renvoyé."
        )


class NotRetryable(ValueError):
    """Only a failed message can be sent again."""


@dataclass(frozen=True)
class OutboxPage:
    messages: list[Message]
    page: int
    pages: int
    total: int
    failed: int
    # Failed messages of this page that are not to be sent again (see ensure_resendable):
    # the page offers no "Renvoyer" for them, their last_error says why.
    kept_back: frozenset[int] = frozenset()


def list_messages(
    session: Session,
    *,
    territory_id: int,
    user_id: int,
    status: MessageStatus | None = None,
    page: int = 1,
) -> OutboxPage:
    """Newest first, one page; reading message bodies (personal data) is audited."""
    where = [Message.territory_id == territory_id]
    if status is not None:
        where.append(Message.status == status)
    total = session.scalar(select(func.count()).select_from(Message).where(*where)) or 0
    failed = (
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.territory_id == territory_id, Message.status == MessageStatus.FAILED)
        )
        or 0
    )
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    messages = list(
        session.scalars(
            select(Message)
            .where(*where)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
        )
    )
    audit.record(
        session,
        "outbox_viewed",
        territory_id=territory_id,
        user_id=user_id,
        object_type="message",
        object_id=",".join(str(m.id) for m in messages)[:40],
        count=len(messages),
        page=page,
    )
    return OutboxPage(messages, page, pages, total, failed, _kept_back(session, messages))


def _kept_back(session: Session, messages: list[Message]) -> frozenset[int]:
    failed = [m for m in messages if m.status is MessageStatus.FAILED and m.request_id]
    if not failed:
        return frozenset()
    ids = {m.request_id for m in failed}
    requests = {r.id: r for r in session.scalars(select(Request).where(Request.id.in_(ids)))}
    kept_back = set()
    for message in failed:
        try:
            ensure_resendable(message, requests.get(message.request_id or 0))
        except (ProcessingLimited, KeptBack):
            kept_back.add(message.id)
    return frozenset(kept_back)


def ensure_resendable(message: Message, request: Request | None) -> None:
    """Raise what says why a failed message of `request` is not to be sent again:
    RequestWithdrawn when the person withdrew it or had it erased (what was waiting was held
    back then), ProcessingLimited when they limited its processing
    (rights_limitation.limit_processing withheld it), Superseded for the acknowledgement of a
    request forwarded to another CPTS since (patient_link.close_as_forwarded withheld it, or it
    failed: the other CPTS's acknowledgement, with the reference that counts, replaces it)."""
    if request is None:
        return
    if request.status is Status.WITHDRAWN or request.anonymised_at is not None:
        raise RequestWithdrawn()
    ensure_workable(request)
    if message.purpose == "acknowledgement" and was_forwarded(request):
        raise Superseded()


def retry_message(
    session: Session, message_id: int, *, territory_id: int, user_id: int, now: datetime
) -> Message:
    """Queue a failed message again; the dispatcher sends it once at its next round.

    Raise what ensure_resendable raises for a message not to be sent again."""
    message = session.scalar(
        select(Message).where(Message.id == message_id, Message.territory_id == territory_id)
    )
    if message is None:
        audit.record(
            session,
            "message_not_found",
            territory_id=territory_id,
            user_id=user_id,
            object_type="message",
            object_id=message_id,
        )
        raise MessageNotFound(message_id)
    if message.status is not MessageStatus.FAILED:
        raise NotRetryable(message_id)
    request = session.get(Request, message.request_id) if message.request_id else None
    ensure_resendable(message, request)
    requeue(session, message, now)
    audit.record(
        session,
        "message_retried",
        territory_id=territory_id,
        user_id=user_id,
        object_type="message",
        object_id=message.id,
    )
    return message
