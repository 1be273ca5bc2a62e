"""The six-month refresh: reminders with a signed link, the doctor's answer, stale doctors.

A campaign, for one doctor, is the renewal of one confirmation: its key is the date of the
confirmation being renewed ('jamais' when never confirmed). The reminder command runs daily;
a DoctorReminder row per doctor and campaign, and the outbox's idempotency keys, make each
reminder go out once however often it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models import (
    Accepting,
    Doctor,
    DoctorReminder,
    Territory,
    VolunteerStatus,
)
from notifications.outbox import queue_message
from orientation.links import LIFETIMES, LinkPurpose, LinkSigner
from orientation.services.doctor_availability import paris_date
from orientation.services.doctors import contact_route, record_change
from orientation.services.message_templates import render_for_territory
from orientation.services.overview import availability_cutoff

# Who answered through the link, as shown in "last confirmed ... by ...".
BY_DOCTOR = "le médecin (lien personnel)"


class LinkAlreadyUsed(Exception):
    """The link's version is behind the doctor's counter: it was already used."""


def availability_link(doctor: Doctor, base_url: str, secret_key: str) -> str:
    """The absolute URL of a doctor's availability form, for the current link version."""
    token = LinkSigner(secret_key).make(
        LinkPurpose.DOCTOR_AVAILABILITY, doctor.id, doctor.link_version
    )
    return f"{base_url.rstrip('/')}/medecin/{token}"


def refresh_period(territory: Territory) -> timedelta:
    return timedelta(days=round(territory.availability_refresh_months * 30.44))


def campaign_of(doctor: Doctor) -> str:
    """The campaign a doctor is in: the confirmation being renewed."""
    return doctor.confirmed_at.date().isoformat() if doctor.confirmed_at else "jamais"


def due_at(doctor: Doctor, territory: Territory) -> datetime:
    """When the doctor's availability becomes stale without a new confirmation."""
    start = doctor.confirmed_at or doctor.created_at
    return start + refresh_period(territory) if doctor.confirmed_at else start


@dataclass
class RemindReport:
    first: int = 0
    second: int = 0
    newly_stale: int = 0
    no_contact: int = 0


def send_reminders(
    session: Session,
    territory: Territory,
    now: datetime,
    make_link: Callable[[Doctor], str],
    *,
    window_days: int = 30,
    second_after_days: int = 14,
) -> RemindReport:
    """Queue the due reminders of one territory and mark stale doctors; the caller commits."""
    report = RemindReport()
    doctors = session.scalars(
        select(Doctor)
        .where(
            Doctor.territory_id == territory.id,
            Doctor.active.is_(True),
            Doctor.volunteer_status == VolunteerStatus.VOLUNTEER,
        )
        .order_by(Doctor.id)
    ).all()
    reminders = {
        (r.doctor_id, r.campaign): r
        for r in session.scalars(
            select(DoctorReminder).where(DoctorReminder.territory_id == territory.id)
        )
    }
    for doctor in doctors:
        due = due_at(doctor, territory)
        if due - now > timedelta(days=window_days):
            continue
        campaign = campaign_of(doctor)
        reminder = reminders.get((doctor.id, campaign))
        if reminder is None:
            reminder = DoctorReminder(
                territory_id=territory.id, doctor_id=doctor.id, campaign=campaign, due_at=due
            )
            session.add(reminder)
        if now >= due and reminder.stale_at is None:
            reminder.stale_at = now
            report.newly_stale += 1
            record_change(
                session,
                doctor,
                now=now,
                source="refresh",
                actor_label="orientation doctors remind",
                action="stale",
                changes={},
            )
        second_due = (
            reminder.first_sent_at is not None
            and reminder.second_sent_at is None
            and now - reminder.first_sent_at >= timedelta(days=second_after_days)
        )
        if reminder.first_sent_at is not None and not second_due:
            continue
        target = contact_route(doctor)
        if target is None:
            report.no_contact += 1
            continue
        channel, recipient = target
        number = 2 if second_due else 1
        overdue = due <= now
        # A doctor already due is asked to answer "dès que possible"; a CPTS's own text that
        # still says "avant le {{ due_date }}" gets the day the link expires, never a past date.
        deadline = now + LIFETIMES[LinkPurpose.DOCTOR_AVAILABILITY] if overdue else due
        message = render_for_territory(
            session,
            territory.id,
            "doctor_reminder",
            channel,
            {
                "doctor_name": doctor.display_name,
                "cpts_name": territory.name,
                "link": make_link(doctor),
                "due_date": paris_date(deadline).strftime("%d/%m/%Y"),
                "overdue": overdue,
                "second": number == 2,
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
            purpose="doctor_reminder",
            idempotency_key=f"doctor-reminder:{doctor.id}:{campaign}:{number}",
            doctor_id=doctor.id,
        )
        if number == 1:
            reminder.first_sent_at = now
            report.first += 1
        else:
            reminder.second_sent_at = now
            report.second += 1
    return report


def _current_reminder(session: Session, doctor: Doctor) -> DoctorReminder | None:
    return session.scalar(
        select(DoctorReminder).where(
            DoctorReminder.doctor_id == doctor.id, DoctorReminder.campaign == campaign_of(doctor)
        )
    )


def mark_opened(session: Session, doctor: Doctor, now: datetime) -> None:
    """The doctor opened the link of the current campaign (for the campaign's progress)."""
    reminder = _current_reminder(session, doctor)
    if reminder is not None and reminder.opened_at is None:
        reminder.opened_at = now


@dataclass
class AvailabilityAnswer:
    """What the doctor says on the self-service form."""

    accepting: Accepting
    paused_until: date | None
    capacity_left: int
    accepts_under_6: bool
    accepts_elderly_dependent: bool
    accepts_ald_followup: bool
    home_visits: bool
    home_visit_radius_km: float


def apply_answer(
    session: Session, doctor: Doctor, link_version: int, answer: AvailabilityAnswer, now: datetime
) -> None:
    """Record the doctor's confirmation; raise LinkAlreadyUsed for a replayed link.

    The version is checked and bumped in one UPDATE, so two submissions of the same link
    racing each other cannot both succeed.
    """
    bumped = session.execute(
        update(Doctor)
        .where(Doctor.id == doctor.id, Doctor.link_version == link_version)
        .values(link_version=link_version + 1)
        .execution_options(synchronize_session=False)
    )
    if bumped.rowcount != 1:  # type: ignore[attr-defined]
        raise LinkAlreadyUsed()
    reminder = _current_reminder(session, doctor)
    if reminder is not None:
        reminder.confirmed_at = now
        reminder.opened_at = reminder.opened_at or now
    changes = {}
    values: dict[str, Any] = {
        "accepting": answer.accepting,
        "paused_until": answer.paused_until if answer.accepting is Accepting.PAUSED else None,
        # A pause keeps the places the doctor gave for after it: a paused doctor is not
        # ranked while the pause lasts (doctor_availability.is_accepting), and is again, with
        # these places, once it ends.
        "capacity_left": (
            max(0, answer.capacity_left) if answer.accepting is not Accepting.NO else 0
        ),
        "accepts_under_6": answer.accepts_under_6,
        "accepts_elderly_dependent": answer.accepts_elderly_dependent,
        "accepts_ald_followup": answer.accepts_ald_followup,
        "home_visits": answer.home_visits,
        "home_visit_radius_km": answer.home_visit_radius_km if answer.home_visits else 0.0,
    }
    if doctor.volunteer_status in (VolunteerStatus.NOT_YET, VolunteerStatus.DECLINED):
        # An invited doctor: yes (or "not now, until a date") is joining, no is declining.
        values["volunteer_status"] = (
            VolunteerStatus.DECLINED
            if answer.accepting is Accepting.NO
            else VolunteerStatus.VOLUNTEER
        )
    for name, value in values.items():
        if getattr(doctor, name) != value:
            changes[name] = (getattr(doctor, name), value)
            setattr(doctor, name, value)
    changes["confirmed_at"] = (doctor.confirmed_at, now)
    doctor.confirmed_at = now
    doctor.confirmed_by = BY_DOCTOR
    doctor.link_version = link_version + 1
    record_change(
        session,
        doctor,
        now=now,
        source="doctor_link",
        actor_label=doctor.display_name,
        action="confirmed",
        changes=changes,
    )


@dataclass(frozen=True)
class CampaignProgress:
    sent: int
    opened: int
    confirmed: int
    stale: int


def campaign_progress(session: Session, territory: Territory, now: datetime) -> CampaignProgress:
    """Reminders of the current period: sent, opened, confirmed, and doctors now stale."""
    since = now - refresh_period(territory)
    r = DoctorReminder
    sent, opened, confirmed = session.execute(
        select(
            func.count(r.first_sent_at), func.count(r.opened_at), func.count(r.confirmed_at)
        ).where(r.territory_id == territory.id, r.first_sent_at >= since)
    ).one()
    cutoff = availability_cutoff(territory, now)
    stale = (
        session.scalar(
            select(func.count())
            .select_from(Doctor)
            .where(
                Doctor.territory_id == territory.id,
                Doctor.active.is_(True),
                Doctor.volunteer_status == VolunteerStatus.VOLUNTEER,
                (Doctor.confirmed_at < cutoff) | Doctor.confirmed_at.is_(None),
            )
        )
        or 0
    )
    return CampaignProgress(sent=sent, opened=opened, confirmed=confirmed, stale=stale)
