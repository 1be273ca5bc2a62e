"""The coordinator's list of doctors, with the flags that need attention (stale, not placed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models import Doctor, DoctorSite, LocationPrecision, Territory, VolunteerStatus
from orientation.services.doctors import is_accepting, is_placed, is_stale
from orientation.services.overview import availability_cutoff


@dataclass(frozen=True)
class DoctorFilters:
    """Filters of the coordinator's list."""

    text: str = ""
    only: str = ""  # "", "stale", "not_placed", "accepting", "inactive", "not_yet", "declined"


@dataclass(frozen=True)
class DoctorRow:
    doctor: Doctor
    accepting: bool
    stale: bool
    placed: bool  # the main practice
    sites: int = 0  # secondary sites
    unplaced_sites: int = 0  # of which not placed (flagged, out of ranking)


def list_doctors(
    session: Session, territory: Territory, now: datetime, filters: DoctorFilters
) -> list[DoctorRow]:
    """The doctors of the territory with their flags, by name."""
    cutoff = availability_cutoff(territory, now)
    query = select(Doctor).where(Doctor.territory_id == territory.id)
    if filters.only != "inactive":
        query = query.where(Doctor.active.is_(True))
    else:
        query = query.where(Doctor.active.is_(False))
    if filters.text.strip():
        like = f"%{filters.text.strip()}%"
        query = query.where(
            Doctor.last_name.ilike(like) | Doctor.first_name.ilike(like) | Doctor.rpps.like(like)
        )
    s = DoctorSite
    site_counts = {
        doctor_id: (total, unplaced or 0)
        for doctor_id, total, unplaced in session.execute(
            select(
                s.doctor_id,
                func.count(),
                func.sum(case((s.location_precision == LocationPrecision.NONE, 1), else_=0)),
            )
            .where(s.territory_id == territory.id)
            .group_by(s.doctor_id)
        )
    }
    rows = [
        DoctorRow(
            d,
            is_accepting(d, now.date()),
            is_stale(d, cutoff),
            is_placed(d),
            *site_counts.get(d.id, (0, 0)),
        )
        for d in session.scalars(query.order_by(Doctor.last_name, Doctor.first_name, Doctor.id))
    ]
    volunteer = VolunteerStatus.VOLUNTEER
    keep = {
        "stale": lambda r: r.stale and r.doctor.volunteer_status is volunteer,
        "not_placed": lambda r: not r.placed or r.unplaced_sites > 0,
        "accepting": lambda r: r.accepting and not r.stale,
        "not_yet": lambda r: r.doctor.volunteer_status is VolunteerStatus.NOT_YET,
        "declined": lambda r: r.doctor.volunteer_status is VolunteerStatus.DECLINED,
    }.get(filters.only)
    return [r for r in rows if keep(r)] if keep else rows
