"""The registry of GPs of a territory: checks, saving with an event per change, ranking input.

Services take the session (scoped to the territory in staff views) and the clock; they know
nothing of Flask. Every change to a doctor is a DoctorEvent naming its source. What the
availability answers mean (accepting today, stale, their checks) is in doctor_availability.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer
from geo.ranking import DoctorPoint, SitePoint
from models import (
    Accepting,
    Channel,
    Doctor,
    DoctorEvent,
    DoctorSite,
    LocationPrecision,
    Territory,
    VolunteerStatus,
)
from orientation.services.contact import display_phone, is_mobile
from orientation.services.doctor_availability import AVAILABILITY_FIELDS, is_accepting, is_stale
from orientation.services.overview import availability_cutoff


class DoctorError(ValueError):
    """Bad input about a doctor; `field` names the form field the French message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def luhn_valid(digits: str) -> bool:
    """The Luhn check (ISO/IEC 7812), used for the key digit of RPPS numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def check_rpps(value: str) -> str:
    """An RPPS number: 11 digits, the last one a Luhn key (Agence du numérique en santé).

    Checked against real numbers: the RPPS numbers of the public Annuaire Santé extract
    (PS_LibreAcces_Personne_activite, column "Identifiant PP") quoted by public code that
    parses it all pass the Luhn check over their 11 digits; the 12-digit "Identification
    nationale PP" (8 + RPPS) does not, so only the 11 digits are checked.
    """
    rpps = "".join(value.split())
    if not rpps:
        raise DoctorError("rpps", "Indiquez le numéro RPPS (11 chiffres).")
    if not rpps.isdigit() or not rpps.isascii():
        raise DoctorError("rpps", "Le numéro RPPS ne contient que des chiffres.")
    if len(rpps) != 11:
        raise DoctorError("rpps", f"Le numéro RPPS compte 11 chiffres (ici {len(rpps)}).")
    if not luhn_valid(rpps):
        raise DoctorError("rpps", "Ce numéro RPPS n'est pas valide (clé de contrôle fausse).")
    return rpps


def rpps_with_key(first_ten: str) -> str:
    """The 11-digit RPPS whose Luhn key completes these ten digits (demo and tests)."""
    for key in "0123456789":
        if luhn_valid(first_ten + key):
            return first_ten + key
    raise AssertionError("unreachable: one key digit always completes a Luhn number")


# Metropolitan France with Corsica, and the five overseas départements (lat/lon boxes).
FRANCE_BOXES = (
    (41.3, 51.2, -5.3, 9.7),
    (15.8, 16.6, -61.9, -60.9),  # Guadeloupe
    (14.3, 14.95, -61.3, -60.8),  # Martinique
    (2.1, 5.8, -54.7, -51.6),  # Guyane
    (-21.45, -20.85, 55.2, 55.9),  # La Réunion
    (-13.1, -12.6, 44.95, 45.35),  # Mayotte
)


def check_coordinates(lat: float, lon: float) -> tuple[float, float]:
    """Refuse points outside France (a swapped lat/lon is the usual mistake)."""
    if not any(a <= lat <= b and c <= lon <= d for a, b, c, d in FRANCE_BOXES):
        raise DoctorError(
            "lat",
            "Ces coordonnées sont hors de France (latitude puis longitude, "
            "par exemple 50.6881 et 2.8812).",
        )
    return round(lat, 6), round(lon, 6)


@dataclass(frozen=True)
class Location:
    insee: str | None
    lat: float | None
    lon: float | None
    precision: LocationPrecision


def locate(
    gazetteer: Gazetteer,
    postal_code: str,
    commune: str,
    lat: float | None = None,
    lon: float | None = None,
) -> Location:
    """Coordinates when given, else the commune's point; NONE when it cannot be placed."""
    found = gazetteer.find(postal_code, commune) if commune else None
    if found is None:
        candidates = gazetteer.communes_of_postal_code(postal_code)
        found = candidates[0] if len(candidates) == 1 else None
    if lat is not None and lon is not None:
        lat, lon = check_coordinates(lat, lon)
        return Location(found.insee if found else None, lat, lon, LocationPrecision.ADDRESS)
    if found is not None:
        return Location(found.insee, found.lat, found.lon, LocationPrecision.COMMUNE)
    return Location(None, None, None, LocationPrecision.NONE)


def keeps_hand_placement(
    precision: LocationPrecision | None,
    point: tuple[float | None, float | None],
    location: Location,
    *,
    point_given: bool,
    unmoved: bool,
) -> bool:
    """Whether a point placed by hand survives an input (the doctor's card, a secondary site).

    It does when the input does not move the place: no point given and `unmoved` (the
    caller's judgment that the address is the same, as when a form is saved as shown), or
    the same point given again (importing the export back). Otherwise the input's location
    replaces it: saving a commune's centre over a hand placement would lose it for nothing.
    """
    if precision is not LocationPrecision.MANUAL:
        return False
    if point_given:
        return (location.lat, location.lon) == point
    return unmoved


@dataclass
class DoctorInput:
    """What a coordinator or an import says about a doctor."""

    rpps: str
    first_name: str
    last_name: str
    practice_address: str = ""
    postal_code: str = ""
    commune: str = ""
    lat: float | None = None
    lon: float | None = None
    phone: str = ""
    email: str = ""
    preferred_channel: str = "email"
    volunteer_status: VolunteerStatus = VolunteerStatus.VOLUNTEER
    accepting: Accepting = Accepting.NO
    paused_until: date | None = None
    capacity_left: int = 0
    accepts_under_6: bool = True
    accepts_elderly_dependent: bool = True
    accepts_ald_followup: bool = True
    home_visits: bool = False
    home_visit_radius_km: float = 0.0
    languages: str = ""
    step_free_access: bool = False
    coordinator_note: str = ""


DOCTOR_FIELDS = (
    "first_name",
    "last_name",
    "practice_address",
    "postal_code",
    "phone",
    "email",
    "preferred_channel",
    "languages",
    "step_free_access",
    "coordinator_note",
    *AVAILABILITY_FIELDS,
)


def jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if hasattr(value, "value"):
        return value.value
    return value


def record_change(
    session: Session,
    doctor: Doctor,
    *,
    now: datetime,
    source: str,
    actor_label: str,
    action: str,
    changes: dict[str, Any],
) -> DoctorEvent:
    """Add the event describing one change to a doctor (committed with the change)."""
    event = DoctorEvent(
        territory_id=doctor.territory_id,
        doctor_id=doctor.id,
        at=now,
        source=source,
        actor_label=actor_label,
        action=action,
        changes={k: [jsonable(a), jsonable(b)] for k, (a, b) in changes.items()},
    )
    session.add(event)
    return event


def find_by_rpps(session: Session, territory_id: int, rpps: str) -> Doctor | None:
    return session.scalar(
        select(Doctor).where(Doctor.territory_id == territory_id, Doctor.rpps == rpps)
    )


def apply_input(
    doctor: Doctor, data: DoctorInput, location: Location, now: datetime, confirmed_by: str
) -> dict[str, tuple[Any, Any]]:
    """Copy the input onto the doctor; return the changed fields (before, after)."""
    changes: dict[str, tuple[Any, Any]] = {}
    for name in DOCTOR_FIELDS:
        value = getattr(data, name)
        if name == "capacity_left":
            value = max(0, int(value))
        before = getattr(doctor, name, None)
        if before != value:
            changes[name] = (before, value)
            setattr(doctor, name, value)
    # The card's practice has not moved while it stays in the same commune.
    keep_manual = keeps_hand_placement(
        doctor.location_precision,
        (doctor.lat, doctor.lon),
        location,
        point_given=data.lat is not None,
        unmoved=location.insee == doctor.commune_insee,
    )
    if not keep_manual:
        for name, value in (
            ("commune_insee", location.insee),
            ("lat", location.lat),
            ("lon", location.lon),
            ("location_precision", location.precision),
        ):
            before = getattr(doctor, name, None)
            if before != value:
                changes[name] = (before, value)
                setattr(doctor, name, value)
    if any(name in changes for name in AVAILABILITY_FIELDS):
        doctor.confirmed_at = now
        doctor.confirmed_by = confirmed_by
    return changes


def save_doctor(
    session: Session,
    gazetteer: Gazetteer,
    territory: Territory,
    data: DoctorInput,
    *,
    now: datetime,
    actor_label: str,
    doctor: Doctor | None = None,
) -> Doctor:
    """Create (doctor None) or update a doctor from the coordinator's form."""
    data.rpps = check_rpps(data.rpps)
    if not data.first_name.strip() and not data.last_name.strip():
        raise DoctorError("last_name", "Indiquez le nom du médecin.")
    other = find_by_rpps(session, territory.id, data.rpps)
    if other is not None and (doctor is None or other.id != doctor.id):
        raise DoctorError(
            "rpps", f"Ce numéro RPPS est déjà celui de {other.display_name} dans ce territoire."
        )
    location = locate(gazetteer, data.postal_code, data.commune, data.lat, data.lon)
    created = doctor is None
    if doctor is None:
        doctor = Doctor(territory_id=territory.id, rpps=data.rpps, created_at=now)
        session.add(doctor)
    elif doctor.rpps != data.rpps:
        doctor.rpps = data.rpps
    changes = apply_input(doctor, data, location, now, f"coordination ({actor_label})")
    session.flush()
    record_change(
        session,
        doctor,
        now=now,
        source="coordinator",
        actor_label=actor_label,
        action="created" if created else "updated",
        changes=changes,
    )
    return doctor


def set_active(
    session: Session, doctor: Doctor, active: bool, *, now: datetime, actor_label: str
) -> None:
    """Deactivate (kept for history, gone from ranking and map) or reactivate a doctor."""
    if doctor.active == active:
        return
    record_change(
        session,
        doctor,
        now=now,
        source="coordinator",
        actor_label=actor_label,
        action="reactivated" if active else "deactivated",
        changes={"active": (doctor.active, active)},
    )
    doctor.active = active


def place_doctor(
    session: Session, doctor: Doctor, lat: float, lon: float, *, now: datetime, actor_label: str
) -> None:
    """A coordinator places a doctor by hand (a map click or typed coordinates)."""
    lat, lon = check_coordinates(lat, lon)
    record_change(
        session,
        doctor,
        now=now,
        source="coordinator",
        actor_label=actor_label,
        action="placed",
        changes={"lat": (doctor.lat, lat), "lon": (doctor.lon, lon)},
    )
    doctor.lat, doctor.lon = lat, lon
    doctor.location_precision = LocationPrecision.MANUAL


def contact_route(doctor: Doctor) -> tuple[Channel, str] | None:
    """Where to write to a doctor: the preferred channel when it can reach them, else e-mail,
    else SMS to a mobile; None when nothing can (an SMS to a landline never arrives)."""
    by_sms = (Channel.SMS, doctor.phone) if doctor.phone and is_mobile(doctor.phone) else None
    by_email = (Channel.EMAIL, doctor.email) if doctor.email else None
    preferred = by_sms if doctor.preferred_channel == "sms" else by_email
    return preferred or by_email or by_sms


def unreachable_reason(doctor: Doctor) -> str:
    """Why no message can be sent to this doctor, in French (when contact_route is None)."""
    if doctor.phone:
        return (
            f"{doctor.display_name} n'a pas d'e-mail et son numéro "
            f"{display_phone(doctor.phone)} n'est pas un portable : il ne peut pas recevoir de "
            "SMS. Ajoutez un e-mail ou un numéro de portable sur sa fiche."
        )
    return f"{doctor.display_name} n'a ni e-mail ni téléphone enregistré."


def is_placed(doctor: Doctor) -> bool:
    return (
        doctor.lat is not None
        and doctor.lon is not None
        and doctor.location_precision is not LocationPrecision.NONE
    )


def placed_sites(session: Session, territory_id: int) -> dict[int, tuple[SitePoint, ...]]:
    """Each doctor's placed secondary sites (an unplaced one is left out of ranking)."""
    s = DoctorSite
    sites: dict[int, list[SitePoint]] = {}
    rows = session.execute(
        select(s.doctor_id, s.id, s.lat, s.lon)
        .where(
            s.territory_id == territory_id,
            s.location_precision != LocationPrecision.NONE,
            s.lat.is_not(None),
            s.lon.is_not(None),
        )
        .order_by(s.id)
    )
    for doctor_id, site_id, lat, lon in rows:
        if lat is not None and lon is not None:  # the query says so; mypy cannot see it
            sites.setdefault(doctor_id, []).append(SitePoint(site_id, lat, lon))
    return {doctor_id: tuple(points) for doctor_id, points in sites.items()}


def doctor_points(session: Session, territory: Territory, now: datetime) -> list[DoctorPoint]:
    """The ranking input for a territory: every active doctor with its placed sites."""
    cutoff = availability_cutoff(territory, now)
    today = now.date()
    others = placed_sites(session, territory.id)
    doctors = session.scalars(
        select(Doctor)
        .where(Doctor.territory_id == territory.id, Doctor.active.is_(True))
        .order_by(Doctor.id)
    )
    points = []
    for d in doctors:
        placed = is_placed(d)
        points.append(
            DoctorPoint(
                id=d.id,
                lat=d.lat if placed else None,
                lon=d.lon if placed else None,
                accepting=is_accepting(d, today),
                stale=is_stale(d, cutoff),
                capacity_left=d.capacity_left,
                accepts_under_6=d.accepts_under_6,
                accepts_elderly_dependent=d.accepts_elderly_dependent,
                accepts_ald_followup=d.accepts_ald_followup,
                home_visits=d.home_visits,
                home_visit_radius_km=d.home_visit_radius_km,
                step_free_access=d.step_free_access,
                other_sites=others.get(d.id, ()),
            )
        )
    return points
