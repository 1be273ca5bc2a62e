"""The cascade: ask the nearest fitting doctor, then the next one when no answer comes in time.

Run by the timer (`orientation cascade`, later the dispatcher loop), never from a web request:
a page view must not send messages to doctors. The delay is the CPTS's
`doctor_answer_delay_hours`, counted in working hours (Monday to Friday, 9h to 18h, Paris
time): a doctor asked on Friday evening is not skipped over the weekend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import ContactStatus, DoctorContact, Request, Status, Territory
from models.request import IN_CASCADE
from orientation.services.doctor_contacts import Links, ask_doctors
from orientation.services.doctors import contact_route
from orientation.services.matching import NoPatientPoint, rank_doctors
from orientation.services.request_case import CaseError
from orientation.services.workflow import ensure_workable, record_event

PARIS = ZoneInfo("Europe/Paris")
DAY_START, DAY_END = time(9), time(18)


@dataclass
class CascadeSummary:
    expired: int = 0
    asked: int = 0
    exhausted: int = 0
    request_ids: list[int] = field(default_factory=list)


def add_working_hours(start: datetime, hours: float) -> datetime:
    """The instant `hours` working hours (Mon-Fri 9h-18h Paris) after `start`, in UTC."""
    remaining = timedelta(hours=hours)
    local = start.astimezone(PARIS)
    while True:
        if local.weekday() < 5:
            opens = datetime.combine(local.date(), DAY_START, PARIS)
            closes = datetime.combine(local.date(), DAY_END, PARIS)
            local = max(local, opens)
            if local < closes:
                if remaining <= closes - local:
                    return (local + remaining).astimezone(UTC)
                remaining -= closes - local
        local = datetime.combine(local.date() + timedelta(days=1), time(0), PARIS)


# Doctors ranked at once when looking for the next one a message can reach.
REACHABLE_LOOKAHEAD = 5


def answer_deadline(territory: Territory, asked_at: datetime) -> datetime:
    return add_working_hours(asked_at, territory.doctor_answer_delay_hours)


def _ask_next(
    session: Session, territory: Territory, request: Request, links: Links, now: datetime
) -> bool:
    """Ask the nearest fitting doctor not yet asked; False when none is left."""
    asked = frozenset(
        session.scalars(
            select(DoctorContact.doctor_id).where(DoctorContact.request_id == request.id)
        )
    )
    # A doctor no message can reach (a landline and no e-mail) is passed over, not asked: the
    # ask would never arrive and the cascade would wait its whole delay for nothing.
    passed_over: set[int] = set()
    while True:
        try:
            ranking = rank_doctors(
                session, territory, request, now, k=REACHABLE_LOOKAHEAD,
                exclude=asked | passed_over,
            )  # fmt: skip
        except NoPatientPoint:
            return False
        if not ranking.candidates:
            return False
        reachable = [c for c in ranking.candidates if contact_route(c.doctor) is not None]
        if reachable:
            break
        passed_over.update(c.doctor.id for c in ranking.candidates)
    best = reachable[0]
    ask_doctors(
        session,
        territory,
        request,
        [(best.doctor, best.distance_km)],
        links=links,
        now=now,
        in_cascade=True,
    )
    return True


def start_cascade(
    session: Session,
    territory: Territory,
    request: Request,
    *,
    links: Links,
    now: datetime,
    user_id: int,
) -> None:
    """Begin asking doctors one by one, nearest first (the coordinator's button)."""
    ensure_workable(request)
    if request.cascade_state == "running":
        raise CaseError("Une cascade est déjà en cours pour cette demande.")
    request.cascade_state = "running"
    record_event(request, "cascade_started", now=now, actor_user_id=user_id)
    if not _ask_next(session, territory, request, links, now):
        raise CaseError("Aucun médecin disponible ne correspond à cette demande.")


def advance_cascades(session: Session, now: datetime, links: Links) -> CascadeSummary:
    """Expire unanswered cascade contacts past their delay, ask the next doctors, alert."""
    summary = CascadeSummary()
    territories = {t.id: t for t in session.scalars(select(Territory))}
    # A calendar-hours lower bound keeps the scan on the index; working hours are checked
    # exactly below (they are never shorter than calendar hours).
    shortest = min((t.doctor_answer_delay_hours for t in territories.values()), default=48)
    overdue = session.scalars(
        select(DoctorContact).where(
            DoctorContact.status == ContactStatus.ASKED,
            DoctorContact.in_cascade.is_(True),
            DoctorContact.asked_at <= now - timedelta(hours=shortest),
        )
    ).all()
    for contact in overdue:
        territory = territories[contact.territory_id]
        if answer_deadline(territory, contact.asked_at) > now:
            continue
        contact.status = ContactStatus.EXPIRED
        contact.answered_at = now
        request = session.get(Request, contact.request_id)
        if request is not None:
            record_event(
                request,
                "doctor_no_answer",
                now=now,
                actor_label="système",
                note=f"Pas de réponse du médecin n° {contact.position} dans le délai.",
            )
        summary.expired += 1
    session.flush()
    running = session.scalars(
        select(Request).where(Request.cascade_state == "running", IN_CASCADE)
    ).all()
    for request in running:
        if request.processing_limited_at is not None:
            # rights_limitation.limit_processing stops the cascade; a limitation committed while
            # this pass was reading must not ask the next doctor either.
            continue
        statuses = set(
            session.scalars(
                select(DoctorContact.status).where(DoctorContact.request_id == request.id)
            )
        )
        if ContactStatus.ACCEPTED in statuses:
            request.cascade_state = "done"
            continue
        if ContactStatus.ASKED in statuses:
            continue  # still waiting for the current doctor
        if request.status not in (Status.DOCTORS_CONTACTED, Status.IN_PROGRESS, Status.ELIGIBLE):
            request.cascade_state = "done"
            continue
        territory = territories[request.territory_id]
        if _ask_next(session, territory, request, links, now):
            summary.asked += 1
        else:
            request.cascade_state = "exhausted"
            record_event(
                request,
                "cascade_exhausted",
                now=now,
                actor_label="système",
                note="Plus aucun médecin à solliciter : à reprendre par la coordination.",
            )
            summary.exhausted += 1
        summary.request_ids.append(request.id)
    return summary
