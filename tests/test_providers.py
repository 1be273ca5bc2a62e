"""Providers against real local servers: the real twilio client, a real SMTP server."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from models import Channel, MessageStatus
from notifications.providers import (
    PROVIDERS,
    LocalOutbox,
    OutgoingMessage,
    PermanentFailure,
    SmtpEmail,
    TemporaryFailure,
    TwilioSms,
)
from notifications.providers.smtp_email import message_id
from tests.fakes.twilio_server import FakeTwilio


def outgoing(channel: Channel = Channel.SMS, **kwargs: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "id": 7,
        "channel": channel,
        "recipient": "+33612345678",
        "subject": "",
        "body": "Votre demande est enregistrée. Réf. K7QM-4T2X",
        "idempotency_key": "ack-42",
        "created_at": datetime.now(UTC),
    }
    values.update(kwargs)
    return OutgoingMessage(**values)


def twilio(fake: FakeTwilio, timeout: float = 5) -> TwilioSms:
    return TwilioSms(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        sender="+33700000001",
        base_url="https://orientation.example.org",
        api_base=fake.api_base,
        timeout=timeout,
    )


def test_providers_are_registered_by_name() -> None:
    assert PROVIDERS == {"outbox": LocalOutbox, "twilio": TwilioSms, "smtp": SmtpEmail}


def test_an_sms_reaches_twilio_with_its_recipient_sender_body_and_callback(
    twilio_server: FakeTwilio,
) -> None:
    result = twilio(twilio_server).send(outgoing())
    (received,) = twilio_server.messages
    assert result.provider_id == received.sid and result.status is MessageStatus.SENT
    assert (received.to, received.from_) == ("+33612345678", "+33700000001")
    assert received.body == "Votre demande est enregistrée. Réf. K7QM-4T2X"
    assert received.status_callback == (
        "https://orientation.example.org/webhooks/twilio/status?m=ack-42"
    )


def test_twilio_reports_the_delivery_status_of_a_message(twilio_server: FakeTwilio) -> None:
    provider = twilio(twilio_server)
    sid = provider.send(outgoing()).provider_id
    twilio_server.by_sid(sid).status = "delivered"
    assert provider.status(sid) is MessageStatus.DELIVERED


def test_a_twilio_500_is_a_temporary_failure(twilio_server: FakeTwilio) -> None:
    twilio_server.mode = "error500"
    with pytest.raises(TemporaryFailure, match="500"):
        twilio(twilio_server).send(outgoing())


def test_a_twilio_timeout_is_a_temporary_failure(twilio_server: FakeTwilio) -> None:
    twilio_server.mode, twilio_server.delay = "timeout", 1.5
    with pytest.raises(TemporaryFailure, match="pas répondu à temps") as failure:
        twilio(twilio_server, timeout=0.5).send(outgoing())
    assert failure.value.uncertain  # Twilio may have it: ask before sending again
    assert twilio_server.messages == []


def test_an_invalid_number_is_a_permanent_failure_that_says_so(twilio_server: FakeTwilio) -> None:
    twilio_server.invalid_numbers.add("+33612345678")
    with pytest.raises(PermanentFailure, match="21211 : numéro de destinataire invalide"):
        twilio(twilio_server).send(outgoing())


def test_after_a_crash_twilio_is_asked_whether_it_already_took_the_message(
    twilio_server: FakeTwilio,
) -> None:
    provider = twilio(twilio_server)
    message = outgoing()
    assert provider.find_accepted(message, since=message.created_at) is None
    sid = provider.send(message).provider_id
    assert provider.find_accepted(message, since=message.created_at) == sid
    other = outgoing(body="Un autre texte")
    assert provider.find_accepted(other, since=message.created_at) is None
    twilio_server.by_sid(sid).status = "undelivered"  # a copy that never arrived: send again
    assert provider.find_accepted(message, since=message.created_at) is None


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []


@pytest.fixture
def smtp_server() -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()

    class Handler(MessageHandler):
        def handle_message(self, message: Any) -> None:
            raw = message.as_bytes()
            mailbox.messages.append(
                email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[arg-type]
            )

    with socket.socket() as probe:  # a free port (aiosmtpd does not report an ephemeral one)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield controller, mailbox
    controller.stop()


def test_an_email_reaches_the_smtp_server_with_subject_utf8_body_and_message_id(
    smtp_server: tuple[Controller, Mailbox],
) -> None:
    controller, mailbox = smtp_server
    provider = SmtpEmail(
        url=f"smtp://127.0.0.1:{controller.port}?tls=off", sender="cpts@example.org"
    )
    message = outgoing(
        Channel.EMAIL,
        recipient="jeanne.martin@example.org",
        subject="Votre médecin traitant",
        body="Bonjour Jeanne,\nLe Dr Lefèvre peut être votre médecin. Cœur et âme.",
    )
    result = provider.send(message)
    (received,) = mailbox.messages
    assert received["Subject"] == "Votre médecin traitant"
    assert received["To"] == "jeanne.martin@example.org"
    assert received.get_content().strip() == message.body
    assert received["Message-ID"] == message_id("ack-42", "cpts@example.org") == result.provider_id


def test_an_unreachable_smtp_server_is_a_temporary_failure() -> None:
    provider = SmtpEmail(url="smtp://127.0.0.1:9?tls=off", sender="cpts@example.org", timeout=1)
    with pytest.raises(TemporaryFailure, match="injoignable"):
        provider.send(outgoing(Channel.EMAIL, recipient="a@example.org"))


def test_the_local_outbox_marks_messages_delivered_without_sending_anything() -> None:
    result = LocalOutbox().send(outgoing())
    assert result == type(result)(provider_id="local-7", status=MessageStatus.DELIVERED)
