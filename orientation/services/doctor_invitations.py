"""Inviting the GPs the directory pre-filled ("pas encore volontaires") to volunteer.

An invitation is the same signed, expiring, single-doctor link as the six-month reminder,
sent by the doctor's channel through the outbox; it opens the same self-service form. A
doctor who answers yes (or "not now, until a date") becomes a volunteer with that
availability; one who answers no is recorded as having declined and the bulk action never
invites them again. Each invitation is a DoctorEvent; the outbox key carries the day (Paris
time), so inviting twice the same day sends nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Doctor, Message, Territory, VolunteerStatus
from notifications.outbox import queue_message
from orientation.services.doctors import contact_route, record_change, unreachable_reason
from orientation.services.message_templates import render_for_territory

PARIS = ZoneInfo("Europe/Paris")
# Who a coordinator may invite one by one; the bulk action only takes NOT_YET.
INVITABLE = (VolunteerStatus.NOT_YET, VolunteerStatus.DECLINED)


class NotInvitable(ValueError):
    """This doctor cannot be invited (already volunteer, no contact); says why in French."""


@dataclass
class InviteReport:
    sent: int = 0
    already_today: int = 0
    no_contact: int = 0


def _key(doctor: Doctor, now: datetime) -> str:
    return f"doctor-invitation:{doctor.id}:{now.astimezone(PARIS).date().isoformat()}"


def _queue(
    session: Session,
    territory: Territory,
    doctor: Doctor,
    now: datetime,
    make_link: Callable[[Doctor], str],
    actor_label: str,
    bulk: bool,
) -> None:
    target = contact_route(doctor)
    assert target is not None  # callers checked
    channel, recipient = target
    message = render_for_territory(
        session,
        territory.id,
        "doctor_invitation",
        channel,
        {
            "doctor_name": doctor.display_name,
            "cpts_name": territory.name,
            "link": make_link(doctor),
            "cpts_phone": territory.contact_phone,
        },
    )
    queue_message(
        session,
        territory_id=territory.id,
        channel=channel,
        recipient=recipient,
        subject=message.subject,
        body=message.body,
        purpose="doctor_invitation",
        idempotency_key=_key(doctor, now),
        doctor_id=doctor.id,
    )
    record_change(
        session,
        doctor,
        now=now,
        source="coordinator",
        actor_label=actor_label,
        action="invited",
        changes={"channel": (None, channel.value), **({"bulk": (None, True)} if bulk else {})},
    )


def _sent_today(session: Session, doctors: list[Doctor], now: datetime) -> set[str]:
    keys = [_key(d, now) for d in doctors]
    found: set[str] = set()
    for start in range(0, len(keys), 500):  # bounded IN lists, whatever the territory's size
        found.update(
            session.scalars(
                select(Message.idempotency_key).where(
                    Message.idempotency_key.in_(keys[start : start + 500])
                )
            )
        )
    return found


def invite_doctor(
    session: Session,
    territory: Territory,
    doctor: Doctor,
    now: datetime,
    make_link: Callable[[Doctor], str],
    *,
    actor_label: str,
) -> bool:
    """Invite one doctor; False when they were already invited today (nothing sent)."""
    if not doctor.active or doctor.volunteer_status not in INVITABLE:
        raise NotInvitable(f"{doctor.display_name} est déjà volontaire ou ne participe plus.")
    if contact_route(doctor) is None:
        raise NotInvitable(f"Impossible de l'inviter : {unreachable_reason(doctor)}")
    if _sent_today(session, [doctor], now):
        return False
    _queue(session, territory, doctor, now, make_link, actor_label, bulk=False)
    return True


def bulk_candidates(session: Session, territory: Territory) -> list[Doctor]:
    """The active 'not yet volunteer' doctors: never those who declined or withdrew."""
    return list(
        session.scalars(
            select(Doctor)
            .where(
                Doctor.territory_id == territory.id,
                Doctor.active.is_(True),
                Doctor.volunteer_status == VolunteerStatus.NOT_YET,
            )
            .order_by(Doctor.id)
        )
    )


def invitable_count(session: Session, territory: Territory) -> int:
    """How many doctors the bulk action would write to (not yet volunteer, reachable)."""
    return sum(contact_route(d) is not None for d in bulk_candidates(session, territory))


def invite_all(
    session: Session,
    territory: Territory,
    now: datetime,
    make_link: Callable[[Doctor], str],
    *,
    actor_label: str,
) -> InviteReport:
    """Invite every 'not yet volunteer' doctor with a contact not invited today."""
    report = InviteReport()
    doctors = bulk_candidates(session, territory)
    done = _sent_today(session, doctors, now)
    for doctor in doctors:
        if contact_route(doctor) is None:
            report.no_contact += 1
        elif _key(doctor, now) in done:
            report.already_today += 1
        else:
            _queue(session, territory, doctor, now, make_link, actor_label, bulk=True)
            report.sent += 1
    return report
