"""The figures a coordinator sees first: requests by status, doctors by availability."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import OPEN_STATUSES, Accepting, Doctor, Request, Status, Territory, VolunteerStatus


@dataclass(frozen=True)
class Overview:
    requests_by_status: dict[Status, int]
    open_requests: int
    open_priority_requests: int
    volunteers: int
    accepting_fresh: int
    stale: int
    places_left: int


def availability_cutoff(territory: Territory, now: datetime) -> datetime:
    """Confirmations older than this are stale (six months by default, about 30.44 days each)."""
    return now - timedelta(days=round(territory.availability_refresh_months * 30.44))


def territory_overview(session: Session, territory: Territory, now: datetime) -> Overview:
    """Counts for one territory (the session is already scoped to it)."""
    by_status = {status: 0 for status in Status}
    for status, count in session.execute(
        select(Request.status, func.count()).group_by(Request.status)
    ):
        by_status[Status(status)] = count
    open_priority = (
        session.scalar(
            select(func.count())
            .select_from(Request)
            .where(Request.status.in_(OPEN_STATUSES), Request.is_priority.is_(True))
        )
        or 0
    )
    cutoff = availability_cutoff(territory, now)
    volunteer = (Doctor.active.is_(True), Doctor.volunteer_status == VolunteerStatus.VOLUNTEER)
    volunteers = session.scalar(select(func.count()).select_from(Doctor).where(*volunteer)) or 0
    fresh_accepting = (*volunteer, Doctor.accepting == Accepting.YES, Doctor.confirmed_at >= cutoff)
    accepting_fresh = (
        session.scalar(select(func.count()).select_from(Doctor).where(*fresh_accepting)) or 0
    )
    places_left = (
        session.scalar(
            select(func.coalesce(func.sum(Doctor.capacity_left), 0)).where(*fresh_accepting)
        )
        or 0
    )
    stale = (
        session.scalar(
            select(func.count())
            .select_from(Doctor)
            .where(*volunteer, (Doctor.confirmed_at < cutoff) | Doctor.confirmed_at.is_(None))
        )
        or 0
    )
    return Overview(
        requests_by_status=by_status,
        open_requests=sum(by_status[s] for s in OPEN_STATUSES),
        open_priority_requests=open_priority,
        volunteers=volunteers,
        accepting_fresh=accepting_fresh,
        stale=stale,
        places_left=int(places_left),
    )
