"""The coordinator's list of doctors, with the flags that need attention (stale, not placed),
and a doctor's history in words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models import (
    Doctor,
    DoctorEvent,
    DoctorSite,
    LocationPrecision,
    Territory,
    VolunteerStatus,
)
from orientation.services.doctor_availability import is_accepting, is_stale
from orientation.services.doctors import is_placed
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


# The doctor's history in French: what happened, by whom, which fields changed.
EVENT_LABELS = {
    "created": "Fiche créée",
    "updated": "Fiche modifiée",
    "deactivated": "Fiche désactivée",
    "reactivated": "Fiche réactivée",
    "placed": "Placé(e) sur la carte",
    "invited": "Invitation envoyée",
    "confirmed": "Disponibilités confirmées",
    "stale": "Disponibilités à reconfirmer (délai dépassé)",
    "site_added": "Site secondaire ajouté",
    "site_updated": "Site secondaire modifié",
    "site_placed": "Site secondaire placé",
    "site_removed": "Site secondaire retiré",
}
SOURCE_LABELS = {
    "coordinator": "coordination",
    "import": "recensement (import)",
    "directory": "Annuaire Santé",
    "doctor_link": "lien personnel du médecin",
    "refresh": "rappel automatique",
}
FIELD_LABELS = {
    "first_name": "prénom",
    "last_name": "nom",
    "practice_address": "adresse du cabinet",
    "postal_code": "code postal",
    "commune_insee": "commune",
    "lat": "latitude",
    "lon": "longitude",
    "location_precision": "précision de la position",
    "phone": "téléphone",
    "email": "e-mail",
    "preferred_channel": "canal préféré",
    "languages": "langues",
    "step_free_access": "accès de plain-pied",
    "coordinator_note": "note de la coordination",
    "volunteer_status": "participation",
    "accepting": "accepte de nouveaux patients",
    "paused_until": "fin de la pause",
    "capacity_left": "nombre de places",
    "accepts_under_6": "enfants de moins de 6 ans",
    "accepts_elderly_dependent": "personnes âgées et dépendantes",
    "accepts_ald_followup": "suivi ALD",
    "home_visits": "visites à domicile",
    "home_visit_radius_km": "rayon des visites",
    "confirmed_at": "date de confirmation",
    "active": "fiche active",
    "site": "site",
    "sites": "sites secondaires",
    "address": "adresse",
}
CHANNEL_NAMES = {"email": "par e-mail", "sms": "par SMS"}


def describe_event(event: DoctorEvent) -> str:
    """'Fiche créée (coordination, Marie Dupont) : prénom, nom' for the doctor's history."""
    changes = dict(event.changes or {})
    label = EVENT_LABELS.get(event.action, event.action)
    if event.action == "invited":
        # Older events carry "bulk": false for a single invitation; only a bulk one says so.
        bulk = bool(changes.pop("bulk", [None, False])[1])
        channel = changes.pop("channel", [None, ""])[1]
        label = "Invitation groupée envoyée" if bulk else label
        label = f"{label} {CHANNEL_NAMES[channel]}" if channel in CHANNEL_NAMES else label
    source = SOURCE_LABELS.get(event.source, event.source)
    who = f"{source}, {event.actor_label}" if event.actor_label else source
    fields = ", ".join(FIELD_LABELS.get(name, name) for name in changes)
    return f"{label} ({who})" + (f" : {fields}" if fields else "")
