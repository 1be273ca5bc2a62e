"""Status changes are events; messages are queued once per idempotency key."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Channel, Message, Request, Status, Territory, utcnow
from notifications.outbox import queue_message
from orientation.services.workflow import TransitionRefused, change_status


def test_a_status_change_records_who_when_from_to(
    session: Session, make_territory: Callable[..., Territory], make_request: Callable[..., Request]
) -> None:
    request = make_request(make_territory(), Status.ELIGIBLE)
    now = utcnow()
    change_status(request, Status.IN_PROGRESS, now=now, actor_label="coordinator", note="appel")
    session.commit()
    event = request.events[-1]
    assert (event.from_status, event.to_status, event.note) == ("eligible", "in_progress", "appel")
    assert request.status is Status.IN_PROGRESS


def test_closing_is_possible_from_any_open_state_but_not_reopening(
    session: Session, make_territory: Callable[..., Territory], make_request: Callable[..., Request]
) -> None:
    request = make_request(make_territory(), Status.PROPOSED)
    change_status(request, Status.CLOSED, now=utcnow(), note="déménagé")
    assert request.closed_at is not None
    with pytest.raises(TransitionRefused):
        change_status(request, Status.IN_PROGRESS, now=utcnow())


def test_the_same_message_is_queued_once(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = make_territory()
    for _ in range(2):
        queue_message(
            session,
            territory_id=territory.id,
            channel=Channel.SMS,
            recipient="+33612345678",
            body="Bonjour",
            purpose="acknowledgement",
            idempotency_key="ack-1",
        )
        session.commit()
    assert session.scalar(select(func.count()).select_from(Message)) == 1
