"""A doctor's availability: the answers that describe it, their checks, and what they mean today.

Whether a doctor takes new patients (a yes, or a pause that has ended), whether the answer is
too old to rank on, and which answers cannot be meant as given (a pause ending in the past, a
yes with no place, home visits within 0 km). Dates are checked on the French calendar.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from models import Accepting, Doctor, VolunteerStatus

PARIS = ZoneInfo("Europe/Paris")

# Fields that describe availability: changing them is a (re)confirmation of availability.
AVAILABILITY_FIELDS = (
    "volunteer_status",
    "accepting",
    "paused_until",
    "capacity_left",
    "accepts_under_6",
    "accepts_elderly_dependent",
    "accepts_ald_followup",
    "home_visits",
    "home_visit_radius_km",
)


def availability_errors(
    accepting: Accepting,
    paused_until: date | None,
    capacity_left: int | None,
    home_visits: bool,
    home_visit_radius_km: float | None,
    *,
    today: date,
    kept: Doctor | None = None,
) -> dict[str, str]:
    """French messages by field for an answer that cannot be meant as given.

    `kept` is the doctor as stored: a value the card already holds is not refused (places
    used up by patients taken, a pause that has since ended), so a coordinator can save the
    card unchanged; the doctor's own form passes None and every answer is checked.
    """
    errors: dict[str, str] = {}
    if (
        accepting is Accepting.PAUSED
        and paused_until is not None
        and paused_until <= today
        and not (kept is not None and kept.paused_until == paused_until)
    ):
        errors["paused_until"] = "La fin de la pause doit être une date à venir."
    if (
        accepting is Accepting.YES
        and (capacity_left or 0) < 1
        and not (kept is not None and kept.accepting is Accepting.YES and kept.capacity_left == 0)
    ):
        errors["capacity_left"] = (
            "Indiquez combien de nouveaux patients peuvent être acceptés (au moins 1)."
        )
    if (
        home_visits
        and (home_visit_radius_km or 0) <= 0
        and not (kept is not None and kept.home_visits and kept.home_visit_radius_km <= 0)
    ):
        errors["home_visit_radius_km"] = "Indiquez le rayon des visites à domicile (plus de 0 km)."
    return errors


def paris_date(moment: datetime) -> date:
    """The date in France of an instant: dates shown or checked follow the French calendar."""
    return moment.astimezone(PARIS).date()


def is_accepting(doctor: Doctor, today: date) -> bool:
    """Takes new patients today: an active volunteer who said yes, or whose pause is over."""
    if not doctor.active or doctor.volunteer_status is not VolunteerStatus.VOLUNTEER:
        return False
    if doctor.accepting is Accepting.YES:
        return True
    return (
        doctor.accepting is Accepting.PAUSED
        and doctor.paused_until is not None
        and doctor.paused_until <= today
    )


def is_stale(doctor: Doctor, cutoff: datetime) -> bool:
    """Availability not confirmed within the refresh period."""
    return doctor.confirmed_at is None or doctor.confirmed_at < cutoff
