"""The dispatcher sends each queued message once, retries what can be retried, and records why
a message failed, without touching the request it belongs to."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, Message, MessageStatus, Request, Status, Territory, utcnow
from models.engine import make_sessionmaker
from notifications.dispatcher import Dispatcher, DispatchPolicy, RateLimit, requeue
from notifications.outbox import queue_message
from notifications.providers import LocalOutbox, TwilioSms
from tests.conftest import REDIS_URL, require_redis
from tests.fakes.twilio_server import FakeTwilio


class Clock:
    def __init__(self) -> None:
        # A minute ahead, so that messages queued during the test (at the real time) are due.
        self.now = utcnow() + timedelta(minutes=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_dispatcher(
    app: Flask, clock: Clock, twilio_server: FakeTwilio
) -> Callable[..., Dispatcher]:
    def _make(**policy: Any) -> Dispatcher:
        sms = TwilioSms(
            account_sid=twilio_server.account_sid,
            auth_token=twilio_server.auth_token,
            sender="+33700000001",
            base_url="http://localhost",
            api_base=twilio_server.api_base,
            timeout=0.5,
        )
        return Dispatcher(
            make_sessionmaker(app.extensions["orientation.engine"]),
            {Channel.SMS: sms, Channel.EMAIL: LocalOutbox()},
            DispatchPolicy(**policy),
            clock=clock,
        )

    return _make


def queue(session: Session, territory: Territory, n: int = 1, **kwargs: Any) -> list[Message]:
    messages = [
        queue_message(
            session,
            territory_id=territory.id,
            channel=kwargs.get("channel", Channel.SMS),
            recipient=kwargs.get("recipient", "+33612345678"),
            body=f"Message numéro {i}",
            purpose="proposal",
            idempotency_key=f"test-{territory.id}-{i}",
            request_id=kwargs.get("request_id"),
            not_before=kwargs.get("not_before"),
        )
        for i in range(n)
    ]
    session.commit()
    return messages


def reload(session: Session, message: Message) -> Message:
    session.expire_all()
    found = session.get(Message, message.id)
    assert found is not None
    return found


def test_queued_messages_are_sent_once_and_their_twilio_sid_recorded(
    session: Session,
    make_territory: Callable[..., Territory],
    make_dispatcher: Any,
    twilio_server: FakeTwilio,
) -> None:
    messages = queue(session, make_territory(), 3)
    dispatcher = make_dispatcher(batch_size=2)
    assert dispatcher.run_once().sent == 3
    assert dispatcher.run_once().sent == 0
    assert sorted(twilio_server.bodies()) == [f"Message numéro {i}" for i in range(3)]
    for message in messages:
        message = reload(session, message)
        assert message.status is MessageStatus.SENT and message.attempts == 1
        assert twilio_server.by_sid(message.provider_message_id).body == message.body


def test_a_message_not_yet_due_waits(
    session: Session,
    make_territory: Callable[..., Territory],
    make_dispatcher: Any,
    clock: Clock,
    twilio_server: FakeTwilio,
) -> None:
    (message,) = queue(session, make_territory(), not_before=clock.now + timedelta(hours=1))
    dispatcher = make_dispatcher()
    assert dispatcher.run_once().sent == 0
    clock.advance(hours=1)
    assert dispatcher.run_once().sent == 1


@pytest.mark.parametrize(
    ("mode", "reason", "waiting"),
    [
        # After a timeout the message waits in `sending`: Twilio is asked before a resend.
        ("timeout", "Twilio n'a pas répondu à temps", MessageStatus.SENDING),
        ("error500", "Twilio a répondu 500", MessageStatus.QUEUED),
    ],
)
def test_a_provider_down_keeps_the_message_waiting_with_the_reason_and_a_retry_sends_it_once(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_dispatcher: Any,
    clock: Clock,
    twilio_server: FakeTwilio,
    mode: str,
    reason: str,
    waiting: MessageStatus,
) -> None:
    territory = make_territory()
    request = make_request(territory, status=Status.PROPOSED)
    (message,) = queue(session, territory, request_id=request.id)
    twilio_server.mode, twilio_server.delay = mode, 1.0
    dispatcher = make_dispatcher(retry_after=timedelta(minutes=1))

    report = dispatcher.run_once()
    assert (report.sent, report.rescheduled) == (0, 1)
    message = reload(session, message)
    assert message.status is waiting and reason in message.last_error
    assert message.next_attempt_at == clock.now + timedelta(minutes=1)
    assert session.get(Request, request.id).status is Status.PROPOSED  # type: ignore[union-attr]

    twilio_server.mode = "ok"
    assert dispatcher.run_once().sent == 0  # not before its backoff
    clock.advance(minutes=1)
    assert dispatcher.run_once().sent == 1
    assert twilio_server.bodies() == [message.body]
    message = reload(session, message)
    assert (message.status, message.attempts, message.last_error) == (MessageStatus.SENT, 2, "")


def test_backoff_doubles_and_the_message_fails_after_the_last_attempt(
    session: Session,
    make_territory: Callable[..., Territory],
    make_dispatcher: Any,
    clock: Clock,
    twilio_server: FakeTwilio,
) -> None:
    (message,) = queue(session, make_territory())
    twilio_server.mode = "error500"
    dispatcher = make_dispatcher(max_attempts=3, retry_after=timedelta(seconds=10))
    delays = []
    for _ in range(2):
        dispatcher.run_once()
        message = reload(session, message)
        delays.append(message.next_attempt_at - clock.now)
        clock.advance(hours=1)
    assert delays == [timedelta(seconds=10), timedelta(seconds=20)]
    assert dispatcher.run_once().failed == 1
    message = reload(session, message)
    assert message.status is MessageStatus.FAILED and "500" in message.last_error


def test_a_rejected_number_fails_at_once_and_a_coordinator_retry_sends_it_once(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_dispatcher: Any,
    clock: Clock,
    twilio_server: FakeTwilio,
) -> None:
    territory = make_territory()
    request = make_request(territory, status=Status.PROPOSED)
    (message,) = queue(session, territory, request_id=request.id)
    twilio_server.invalid_numbers.add("+33612345678")
    dispatcher = make_dispatcher()
    assert dispatcher.run_once().failed == 1
    message = reload(session, message)
    assert message.status is MessageStatus.FAILED
    assert message.last_error == "Twilio 21211 : numéro de destinataire invalide"
    assert session.get(Request, request.id).status is Status.PROPOSED  # type: ignore[union-attr]

    twilio_server.invalid_numbers.clear()  # e.g. the coordinator corrected the number
    requeue(session, message, clock.now)
    session.commit()
    assert dispatcher.run_once().sent == 1
    assert dispatcher.run_once().sent == 0
    assert len(twilio_server.bodies()) == 1


def test_the_local_outbox_marks_emails_delivered(
    session: Session, make_territory: Callable[..., Territory], make_dispatcher: Any
) -> None:
    (message,) = queue(session, make_territory(), channel=Channel.EMAIL, recipient="a@example.org")
    make_dispatcher().run_once()
    message = reload(session, message)
    assert message.status is MessageStatus.DELIVERED and message.provider == "outbox"


def test_an_abandoned_message_the_provider_already_took_is_recorded_not_sent_again(
    session: Session,
    make_territory: Callable[..., Territory],
    make_dispatcher: Any,
    clock: Clock,
    twilio_server: FakeTwilio,
) -> None:
    first, second = queue(session, make_territory(), 2)
    dispatcher = make_dispatcher(lease=timedelta(minutes=5))
    claimed = dispatcher.claim()
    assert [m.id for m in claimed] == [first.id, second.id]
    # The dispatcher handed the first message to Twilio, then died before recording it.
    sid = dispatcher.providers[Channel.SMS].send(claimed[0]).provider_id

    assert dispatcher.run_once().recovered == 0  # the lease still runs: maybe it is alive
    clock.advance(minutes=5)
    report = dispatcher.run_once()
    assert (report.recovered, report.sent) == (2, 1)
    assert sorted(twilio_server.bodies()) == ["Message numéro 0", "Message numéro 1"]
    assert reload(session, first).provider_message_id == sid
    assert reload(session, second).status is MessageStatus.SENT


def test_while_twilio_cannot_be_asked_an_abandoned_message_waits(
    session: Session,
    make_territory: Callable[..., Territory],
    make_dispatcher: Any,
    clock: Clock,
    twilio_server: FakeTwilio,
) -> None:
    (message,) = queue(session, make_territory())
    dispatcher = make_dispatcher(lease=timedelta(minutes=5))
    dispatcher.claim()
    clock.advance(minutes=5)
    twilio_server.auth_token = "rotated"  # every request is now refused with 401
    dispatcher.run_once()
    assert reload(session, message).status is MessageStatus.SENDING
    twilio_server.auth_token = dispatcher.providers[Channel.SMS].client.password
    clock.advance(minutes=5)
    assert dispatcher.run_once().sent == 1
    assert twilio_server.bodies() == [message.body]


def test_a_message_another_dispatcher_claimed_is_not_claimed_again(
    session: Session,
    make_territory: Callable[..., Territory],
    make_dispatcher: Any,
) -> None:
    queue(session, make_territory(), 3)
    one, two = make_dispatcher(), make_dispatcher()
    assert len(one.claim(limit=2)) == 2
    assert len(two.claim()) == 1
    assert one.claim() == [] and two.claim() == []
    statuses = session.scalars(select(Message.status)).all()
    assert statuses == [MessageStatus.SENDING] * 3


def test_the_rate_limit_waits_once_the_second_is_used_up(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("notifications.dispatcher.time.sleep", sleeps.append)
    limit = RateLimit({"twilio": 3})
    for _ in range(3):
        limit.wait("twilio")
        limit.wait("outbox")  # no limit set for it
    assert sleeps == []
    with pytest.raises(StopIteration):  # the fake sleep never lets the window pass
        monkeypatch.setattr(
            "notifications.dispatcher.time.sleep", lambda s: sleeps.append(s) or next(iter([]))
        )
        limit.wait("twilio")
    assert 0 < sleeps[0] <= 1


@pytest.mark.parametrize("storage", ["memory://", REDIS_URL])
def test_with_redis_two_dispatcher_processes_share_one_sending_rate(storage: str) -> None:
    if storage == REDIS_URL:
        require_redis()
    provider = f"twilio-{uuid.uuid4().hex}"  # a key of its own in the shared Redis
    # Two dispatchers (as two processes would build them), 3 SMS per second allowed.
    one, two = RateLimit({provider: 3}, storage), RateLimit({provider: 3}, storage)
    assert [one.try_send(provider) for _ in range(2)] == [True, True]
    sent_by_two = [two.try_send(provider) for _ in range(3)]
    if storage == "memory://":
        assert sent_by_two == [True, True, True]  # each process counts its own: 5 in the second
    else:
        assert sent_by_two == [True, False, False]  # 3 in the second, whichever process sends


def test_messages_are_still_sent_when_the_rate_storage_is_down(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr("notifications.dispatcher.time.sleep", sleeps.append)
    limit = RateLimit({"twilio": 1}, "redis://127.0.0.1:1")  # nothing listens: Redis is down
    for _ in range(3):
        limit.wait("twilio")  # would wait a second between sends if the count were kept
    assert sleeps == []
    warnings = [r for r in caplog.records if "sending rates not counted" in r.getMessage()]
    assert len(warnings) == 1  # once per outage, not once per message


def test_a_send_that_timed_out_after_twilio_took_it_is_recorded_not_sent_again(
    session: Session,
    make_territory: Callable[..., Territory],
    make_dispatcher: Any,
    clock: Clock,
    twilio_server: FakeTwilio,
) -> None:
    (message,) = queue(session, make_territory())
    twilio_server.mode, twilio_server.delay = "slow", 1.0  # accepted, answered too late
    dispatcher = make_dispatcher(retry_after=timedelta(minutes=1))
    assert dispatcher.run_once().rescheduled == 1
    twilio_server.mode = "ok"
    clock.advance(minutes=1)
    report = dispatcher.run_once()
    assert (report.recovered, report.sent) == (1, 0)
    assert twilio_server.bodies() == [message.body]
    message = reload(session, message)
    assert message.status is MessageStatus.SENT
    assert message.provider_message_id == twilio_server.messages[0].sid
