"""The done-when journey of the coordinator workspace, with real providers end to end.

A coordinator logs in, opens a request, ranks, asks a doctor, who accepts through the link of
the e-mail our SMTP provider really sent (to a local aiosmtpd server); the proposal goes out
by SMS and e-mail through `orientation dispatch` itself (the real dispatcher, built from the
settings as in production): the `twilio` client talks to the local Twilio server, which then
calls our status webhook, signed, on the live server; the request page shows both messages
with the status the providers reported, and the coordinator marks the request oriented.
"""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, Doctor, Message, MessageStatus, Request, Status, Territory, User
from orientation import Settings
from tests.browser.conftest import serving
from tests.conftest import PASSWORD
from tests.fakes.twilio_server import FakeTwilio


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mailbox(MessageHandler):
    """What the local SMTP server received, parsed."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[email.message.EmailMessage] = []

    def handle_message(self, message: Any) -> None:
        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]

    def body_to(self, recipient: str) -> str:
        found = [m for m in self.received if m["To"] == recipient]
        assert len(found) == 1, f"{len(found)} e-mails to {recipient}"
        return str(found[0].get_content())  # type: ignore[attr-defined]


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = _free_port()  # aiosmtpd does not report an ephemeral port
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def web_port() -> int:
    """Chosen before the app is built: Twilio signs the public URL, so base_url must be it."""
    return _free_port()


@pytest.fixture
def settings(
    settings: Settings,
    web_port: int,
    twilio_server: FakeTwilio,
    mailbox: tuple[Mailbox, int],
) -> Settings:
    """Production's provider settings, pointed at the local Twilio and SMTP servers."""
    return settings.with_overrides(
        base_url=f"http://127.0.0.1:{web_port}",
        sms_provider="twilio",
        email_provider="smtp",
        twilio_account_sid=twilio_server.account_sid,
        twilio_auth_token=twilio_server.auth_token,
        twilio_from="+33700000001",
        twilio_api_base=twilio_server.api_base,
        smtp_url=f"smtp://127.0.0.1:{mailbox[1]}?tls=off",
        mail_from="cpts-lys@example.org",
    )


@pytest.fixture
def live_server(app: Flask, web_port: int) -> Iterator[str]:
    # On the port the settings above announce to Twilio for its status callbacks.
    with serving(app, web_port) as url:
        yield url


def _dispatch(app: Flask) -> str:
    """`orientation dispatch --once`, in this process: the dispatcher as production builds it."""
    result = app.test_cli_runner().invoke(args=["dispatch", "--once"])
    assert result.exit_code == 0, result.output
    return str(result.output)


def test_a_coordinator_sends_a_proposal_that_twilio_and_smtp_really_deliver_then_orients(
    app: Flask,
    live_server: str,
    desktop_page,  # type: ignore[no-untyped-def]
    session: Session,
    twilio_server: FakeTwilio,
    mailbox: tuple[Mailbox, int],
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    inbox = mailbox[0]
    territory = make_territory(name="CPTS Lys-Armentières")
    request = make_request(
        territory,
        persons=[("Odette", "Lemaire", date(1948, 2, 3))],
        phone="+33612345678",
        email="odette@example.org",
        lat=50.688,
        lon=2.88,
    )
    doctor = make_doctor(
        territory, last_name="Dupont", email="dupont@example.org", phone="+33320000001",
        preferred_channel="email", practice_address="3 place du Général de Gaulle",
        postal_code="59280", lat=50.690, lon=2.882, capacity_left=2,
    )  # fmt: skip
    user = make_user(territory)

    page = desktop_page
    page.route(re.compile(r"^https://tile\.openstreetmap\.org/"), lambda route: route.abort())
    page.goto(live_server + "/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/espace/")
    page.goto(live_server + "/espace/demandes")
    page.get_by_role("link", name=request.reference).click()

    # Ranked, asked; the ask leaves by e-mail through the SMTP server.
    assert "Dr Alex Dupont" in page.locator("table.ranked").inner_text()
    page.get_by_label("Solliciter Dr Alex Dupont").check()
    page.get_by_role("button", name="Solliciter les médecins cochés").click()
    expect(page.get_by_text("1 médecin(s) sollicité(s).")).to_be_visible()
    assert "sent 1," in _dispatch(app)
    asked = inbox.body_to("dupont@example.org")
    assert "Odette" not in asked and "Lemaire" not in asked  # only what the doctor needs
    accept = re.findall(re.escape(live_server) + r"/medecin/reponse/\S+", asked)[0]
    doctor_page = page.context.new_page()
    doctor_page.goto(accept)
    doctor_page.get_by_role("button", name="Oui, je peux le prendre").click()
    expect(
        doctor_page.get_by_role("heading", name="Merci, votre accord est enregistré")
    ).to_be_visible()
    doctor_page.close()

    # The proposal, by SMS and e-mail.
    page.reload()
    assert "accepte" in page.locator("table.contacts-table").inner_text()
    page.get_by_label("Texte du SMS (modifiable)").fill(
        "Dr Dupont peut devenir votre medecin traitant : 03 20 00 00 01."
    )
    page.get_by_role("button", name="Envoyer la proposition").click()
    expect(page.get_by_text("Proposition envoyée (SMS, e-mail).")).to_be_visible()
    assert "sent 2," in _dispatch(app)

    sms = [m for m in twilio_server.messages if m.to == "+33612345678"]
    assert [m.body for m in sms] == [
        "Dr Dupont peut devenir votre medecin traitant : 03 20 00 00 01."
    ]
    letter = inbox.body_to("odette@example.org")
    assert "Dr Alex Dupont" in letter and "3 place du Général de Gaulle" in letter
    # Twilio reports the delivery to our webhook, signed, over HTTP.
    assert sms[0].status_callback.startswith(live_server + "/webhooks/twilio/status")
    assert twilio_server.call_webhook(sms[0].sid, "delivered") == 204

    page.reload()
    timeline = page.locator("ol.timeline")
    sms_item = timeline.locator("li", has_text="SMS à +33612345678")
    mail_item = timeline.locator("li", has_text="E-mail à odette@example.org")
    assert sms_item.locator(".message-delivered").count() == 1
    # SMTP reports no delivery: "sent" once our server accepted it, as far as anyone knows.
    assert mail_item.locator(".message-sent").count() == 1
    proposals = session.scalars(
        select(Message).where(Message.purpose == "proposal").order_by(Message.channel)
    ).all()
    assert [(m.channel, m.status) for m in proposals] == [
        (Channel.EMAIL, MessageStatus.SENT),
        (Channel.SMS, MessageStatus.DELIVERED),
    ]

    page.get_by_label("Médecin traitant choisi").select_option(label="Dr Alex Dupont")
    page.get_by_role("button", name="Marquer comme orientée").click()
    expect(page.get_by_text("La demande est orientée.")).to_be_visible()
    session.expire_all()
    done = session.get(Request, request.id)
    assert done is not None and done.status is Status.ORIENTED
    assert done.oriented_doctor_id == doctor.id
