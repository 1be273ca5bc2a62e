"""Twilio's delivery reports: signed ones update the message, forged ones are refused and
audited."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from models import AuditEntry, Channel, Message, MessageStatus, Territory
from models.engine import make_sessionmaker
from notifications.dispatcher import Dispatcher
from notifications.outbox import queue_message
from notifications.providers import LocalOutbox, TwilioSms
from orientation import Settings, create_app
from tests.fakes.twilio_server import AUTH_TOKEN, FakeTwilio


@pytest.fixture
def twilio_settings(settings: Settings) -> Settings:
    return settings.with_overrides(twilio_auth_token=AUTH_TOKEN)


@pytest.fixture
def twilio_app(twilio_settings: Settings) -> Iterator[Flask]:
    application = create_app(twilio_settings)
    yield application
    application.extensions["orientation.engine"].dispose()


def send_one(app: Flask, session: Session, territory: Territory, fake: FakeTwilio) -> Message:
    message = queue_message(
        session,
        territory_id=territory.id,
        channel=Channel.SMS,
        recipient="+33612345678",
        body="Le Dr Martin peut vous recevoir.",
        purpose="proposal",
        idempotency_key="proposal-1",
    )
    session.commit()
    settings = app.extensions["orientation.settings"]
    sms = TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        sender="+33700000001",
        base_url=settings.base_url,
        api_base=fake.api_base,
    )
    sessions = make_sessionmaker(app.extensions["orientation.engine"])
    Dispatcher(sessions, {Channel.SMS: sms, Channel.EMAIL: LocalOutbox()}).run_once()
    session.expire_all()
    return message


def test_a_signed_delivery_report_marks_the_message_delivered(
    twilio_app: Flask,
    session: Session,
    make_territory: Callable[..., Territory],
    twilio_server: FakeTwilio,
) -> None:
    message = send_one(twilio_app, session, make_territory(), twilio_server)
    assert message.status is MessageStatus.SENT
    url, form, signature = twilio_server.signed_callback(message.provider_message_id, "delivered")
    response = twilio_app.test_client().post(
        url.removeprefix("http://localhost"), data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 204
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.DELIVERED  # type: ignore[union-attr]


def test_an_undelivered_report_fails_the_message_with_the_reason(
    twilio_app: Flask,
    session: Session,
    make_territory: Callable[..., Territory],
    twilio_server: FakeTwilio,
) -> None:
    message = send_one(twilio_app, session, make_territory(), twilio_server)
    url, form, signature = twilio_server.signed_callback(message.provider_message_id, "undelivered")
    twilio_app.test_client().post(
        url.removeprefix("http://localhost"), data=form, headers={"X-Twilio-Signature": signature}
    )
    session.expire_all()
    failed = session.get(Message, message.id)
    assert failed is not None and failed.status is MessageStatus.FAILED
    assert failed.last_error == "Twilio : non distribué (undelivered, code 30003)"


@pytest.mark.parametrize("tamper", ["signature", "status", "token"])
def test_a_report_with_a_wrong_signature_is_refused_and_audited(
    twilio_app: Flask,
    session: Session,
    make_territory: Callable[..., Territory],
    twilio_server: FakeTwilio,
    tamper: str,
) -> None:
    message = send_one(twilio_app, session, make_territory(), twilio_server)
    if tamper == "token":
        twilio_server.auth_token = "somebody-else-s-token"
    url, form, signature = twilio_server.signed_callback(message.provider_message_id, "delivered")
    if tamper == "signature":
        signature = signature[:-4] + "AAAA"
    if tamper == "status":
        form["MessageStatus"] = "failed"
    response = twilio_app.test_client().post(
        url.removeprefix("http://localhost"), data=form, headers={"X-Twilio-Signature": signature}
    )
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.SENT  # type: ignore[union-attr]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "webhook_bad_signature"))
    assert entry is not None and entry.object_id == message.provider_message_id


def test_a_report_is_refused_when_no_twilio_token_is_configured(
    client: Any, session: Session
) -> None:
    response = client.post("/webhooks/twilio/status", data={"MessageSid": "SM1"})
    assert response.status_code == 403


def test_twilio_calls_the_webhook_over_http_and_the_message_becomes_delivered(
    settings: Settings,
    session: Session,
    make_territory: Callable[..., Territory],
    twilio_server: FakeTwilio,
) -> None:
    holder: dict[str, Flask] = {}
    server = make_server(
        "127.0.0.1", 0, lambda env, start: holder["app"](env, start), threaded=True
    )
    app = create_app(
        settings.with_overrides(
            twilio_auth_token=AUTH_TOKEN, base_url=f"http://127.0.0.1:{server.server_port}"
        )
    )
    holder["app"] = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        message = send_one(app, session, make_territory(), twilio_server)
        assert twilio_server.call_webhook(message.provider_message_id, "delivered") == 204
    finally:
        server.shutdown()
        app.extensions["orientation.engine"].dispose()
    session.expire_all()
    delivered = session.get(Message, message.id)
    assert delivered is not None and delivered.status is MessageStatus.DELIVERED
    assert delivered.delivered_at is not None
