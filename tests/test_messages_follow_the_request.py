"""What waits in the outbox for a person follows their request: a corrected phone or e-mail,
a withdrawal, an erasure."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, Doctor, Message, MessageStatus, Request, Status, Territory, utcnow
from notifications.outbox import queue_message
from orientation.services.patient_link import complete_request, withdraw_request
from orientation.services.rights_erasure import anonymise_request
from orientation.services.rights_rectification import Correction, correct_request

MakeRequest = Callable[..., Request]
MakeDoctor = Callable[..., Doctor]


def _waiting(
    session: Session, territory: Territory, make_request: MakeRequest, make_doctor: MakeDoctor
) -> Request:
    """A request whose acknowledgement (SMS), a proposal (e-mail) and a doctor's ask wait."""
    doctor = make_doctor(territory)
    request = make_request(
        territory, Status.DOCTORS_CONTACTED, persons=[("Jeanne", "Martin", date(1950, 5, 4))],
        phone="+33612345678", email="jeanne@example.org",
    )  # fmt: skip
    for channel, recipient, purpose, doctor_id in (
        (Channel.SMS, "+33612345678", "acknowledgement", None),
        (Channel.EMAIL, "jeanne@example.org", "proposal", None),
        (Channel.SMS, "+33699999999", "doctor_request", doctor.id),
    ):
        queue_message(
            session, territory_id=territory.id, channel=channel, recipient=recipient,
            body="Votre demande…", purpose=purpose, idempotency_key=f"{purpose}-{request.id}",
            request_id=request.id, doctor_id=doctor_id,
        )  # fmt: skip
    session.commit()
    return request


def _outbox(session: Session, request: Request) -> dict[str, tuple[str, MessageStatus]]:
    session.expire_all()
    messages = session.scalars(select(Message).where(Message.request_id == request.id))
    return {m.purpose: (m.recipient, m.status) for m in messages}


def test_a_phone_corrected_on_the_private_link_gets_the_acknowledgement_not_the_old_one(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
    make_doctor: MakeDoctor,
) -> None:
    request = _waiting(session, make_territory(), make_request, make_doctor)
    complete_request(session, request, comment="", phone="07 98 76 54 32",
                     email="jeanne.m@example.org", now=utcnow())  # fmt: skip
    assert _outbox(session, request) == {
        "acknowledgement": ("+33798765432", MessageStatus.QUEUED),
        "proposal": ("jeanne.m@example.org", MessageStatus.QUEUED),
        "doctor_request": ("+33699999999", MessageStatus.QUEUED),  # a doctor's: unchanged
    }


def test_a_landline_given_at_the_rights_desk_holds_back_the_sms_still_waiting(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
    make_doctor: MakeDoctor,
) -> None:
    request = _waiting(session, make_territory(), make_request, make_doctor)
    correct_request(session, request, Correction(phone="03 20 12 34 56"), utcnow())
    session.commit()
    outbox = _outbox(session, request)
    assert outbox["acknowledgement"] == ("+33612345678", MessageStatus.FAILED)
    assert outbox["proposal"] == ("jeanne@example.org", MessageStatus.QUEUED)
    failed = session.scalar(select(Message).where(Message.purpose == "acknowledgement"))
    assert failed is not None and "retiré ce moyen de contact" in failed.last_error


def test_a_withdrawn_request_sends_nothing_more(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
    make_doctor: MakeDoctor,
) -> None:
    request = _waiting(session, make_territory(), make_request, make_doctor)
    withdraw_request(session, request, now=utcnow())
    outbox = _outbox(session, request)
    assert {status for _, status in outbox.values()} == {MessageStatus.FAILED}
    reasons = set(session.scalars(select(Message.last_error)))
    assert reasons == {"Non envoyé : la personne a retiré sa demande."}


def test_an_erased_request_sends_no_erased_message(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
    make_doctor: MakeDoctor,
) -> None:
    request = _waiting(session, make_territory(), make_request, make_doctor)
    anonymise_request(session, request, utcnow(), reason="test")
    session.commit()
    outbox = _outbox(session, request)
    assert {status for _, status in outbox.values()} == {MessageStatus.FAILED}
