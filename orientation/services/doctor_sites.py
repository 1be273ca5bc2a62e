"""A doctor's secondary practice sites ("sites secondaires"): add, edit, place, remove.

The main practice stays on the Doctor row; each other place where the doctor consults is a
DoctorSite with its own point and precision. A site that cannot be geocoded is kept, flagged
"non placé" and left out of ranking until a coordinator places it. Every change is a
DoctorEvent of the doctor, like any other change to the record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer
from models import Doctor, DoctorSite, LocationPrecision
from orientation.services.doctors import (
    DoctorError,
    Location,
    check_coordinates,
    keeps_hand_placement,
    locate,
    record_change,
)


@dataclass
class SiteInput:
    """A site as the coordinator's form, the survey file or the directory gives it."""

    address: str = ""
    postal_code: str = ""
    commune: str = ""
    lat: float | None = None
    lon: float | None = None

    @property
    def empty(self) -> bool:
        return not (self.address or self.postal_code or self.commune or self.lat is not None)


def describe(site: DoctorSite, gazetteer: Gazetteer) -> str:
    """'12 rue X, 59280 Armentières' for lists, events and exports."""
    commune = gazetteer.get(site.commune_insee) if site.commune_insee else None
    town = " ".join(p for p in (site.postal_code, commune.name if commune else "") if p)
    return ", ".join(p for p in (site.address, town) if p) or "(sans adresse)"


def _check(data: SiteInput) -> None:
    if data.empty:
        raise DoctorError("site_address", "Indiquez l'adresse, le code postal ou la commune.")
    if (data.lat is None) != (data.lon is None):
        raise DoctorError("site_lat", "Indiquez la latitude et la longitude, ou aucune des deux.")


def _same_place(site: DoctorSite, data: SiteInput, location: Location) -> bool:
    """The input gives the site's address again (street, postal code and commune)."""
    # A site not yet flushed has None where the table's default will put "".
    return (
        " ".join((site.address or "").lower().split()) == " ".join(data.address.lower().split())
        and (site.postal_code or "") == data.postal_code.strip()
        and site.commune_insee == location.insee
    )


def apply_site(site: DoctorSite, data: SiteInput, location: Location) -> dict[str, Any]:
    """Copy the input onto the site; a hand placement survives an input that does not move
    the site: the same address without a point (the edit form saved as shown), the same
    point again, or a new address that cannot be placed (the hand point is all we know)."""
    changes: dict[str, Any] = {}
    values: dict[str, Any] = {
        "address": data.address.strip()[:300],
        "postal_code": data.postal_code.strip()[:5],
    }
    keep_manual = keeps_hand_placement(
        site.location_precision,
        (site.lat, site.lon),
        location,
        point_given=data.lat is not None,
        unmoved=_same_place(site, data, location) or location.precision is LocationPrecision.NONE,
    )
    if not keep_manual:
        values.update(
            commune_insee=location.insee,
            lat=location.lat,
            lon=location.lon,
            location_precision=location.precision,
        )
    for name, value in values.items():
        before = getattr(site, name, None)
        if before != value:
            changes[name] = (before, value)
            setattr(site, name, value)
    return changes


def add_site(
    session: Session,
    gazetteer: Gazetteer,
    doctor: Doctor,
    data: SiteInput,
    *,
    now: datetime,
    actor_label: str,
    source: str = "coordinator",
) -> DoctorSite:
    """Add a secondary site to a doctor, geocoded like the main practice."""
    _check(data)
    location = locate(gazetteer, data.postal_code, data.commune, data.lat, data.lon)
    site = DoctorSite(territory_id=doctor.territory_id, doctor_id=doctor.id, created_at=now)
    changes = apply_site(site, data, location)
    session.add(site)
    session.flush()
    record_change(
        session,
        doctor,
        now=now,
        source=source,
        actor_label=actor_label,
        action="site_added",
        changes={"site": (None, describe(site, gazetteer)), **changes},
    )
    return site


def update_site(
    session: Session,
    gazetteer: Gazetteer,
    doctor: Doctor,
    site: DoctorSite,
    data: SiteInput,
    *,
    now: datetime,
    actor_label: str,
) -> None:
    """Change a secondary site's address (or point)."""
    _check(data)
    location = locate(gazetteer, data.postal_code, data.commune, data.lat, data.lon)
    changes = apply_site(site, data, location)
    if changes:
        record_change(
            session,
            doctor,
            now=now,
            source="coordinator",
            actor_label=actor_label,
            action="site_updated",
            changes={"site": (site.id, describe(site, gazetteer)), **changes},
        )


def place_site(
    session: Session,
    doctor: Doctor,
    site: DoctorSite,
    lat: float,
    lon: float,
    *,
    now: datetime,
    actor_label: str,
) -> None:
    """A coordinator places a site by hand (typed coordinates or a click on the map)."""
    lat, lon = check_coordinates(lat, lon)
    record_change(
        session,
        doctor,
        now=now,
        source="coordinator",
        actor_label=actor_label,
        action="site_placed",
        changes={"site": (site.id, site.id), "lat": (site.lat, lat), "lon": (site.lon, lon)},
    )
    site.lat, site.lon = lat, lon
    site.location_precision = LocationPrecision.MANUAL


def remove_site(
    session: Session,
    gazetteer: Gazetteer,
    doctor: Doctor,
    site: DoctorSite,
    *,
    now: datetime,
    actor_label: str,
) -> None:
    """The doctor no longer consults there: the site goes, the event keeps its address."""
    record_change(
        session,
        doctor,
        now=now,
        source="coordinator",
        actor_label=actor_label,
        action="site_removed",
        changes={"site": (describe(site, gazetteer), None)},
    )
    session.delete(site)


def sites_of(session: Session, doctor: Doctor) -> list[DoctorSite]:
    """A doctor's secondary sites, oldest first."""
    return list(
        session.scalars(
            select(DoctorSite).where(DoctorSite.doctor_id == doctor.id).order_by(DoctorSite.id)
        )
    )


def territory_sites(session: Session, territory_id: int) -> dict[int, list[DoctorSite]]:
    """Every secondary site of a territory, by doctor (one query, for lists and exports)."""
    result: dict[int, list[DoctorSite]] = {}
    for site in session.scalars(
        select(DoctorSite).where(DoctorSite.territory_id == territory_id).order_by(DoctorSite.id)
    ):
        result.setdefault(site.doctor_id, []).append(site)
    return result


# The survey file (CSV) gives a doctor's other sites as numbered columns: "Adresse 2",
# "Code postal 2", "Commune 2", "Latitude 2", "Longitude 2", then "... 3" and so on.
SITE_FIELDS = ("practice_address", "postal_code", "commune", "lat", "lon")
SITE_HEADERS = {
    "practice_address": "Adresse",
    "postal_code": "Code postal",
    "commune": "Commune",
    "lat": "Latitude",
    "lon": "Longitude",
}


def site_column(key: str, number: int) -> str:
    """The internal name of a numbered site column: 'postal_code_2'."""
    return f"{key}_{number}"


def parse_site_columns(
    values: dict[str, str], numbers: Iterable[int], parse_number: Callable[[str, str], float | None]
) -> list[SiteInput]:
    """The non-empty numbered sites of one survey row, in column order."""
    sites = []
    for n in sorted(numbers):
        cell = {key: values.get(site_column(key, n), "").strip() for key in SITE_FIELDS}
        lat = parse_number(cell["lat"], f"la latitude du site {n}")
        lon = parse_number(cell["lon"], f"la longitude du site {n}")
        if (lat is None) != (lon is None):
            raise ValueError(f"site {n} : latitude et longitude vont ensemble")
        site = SiteInput(
            address=cell["practice_address"][:300],
            postal_code=cell["postal_code"][:5],
            commune=cell["commune"],
            lat=lat,
            lon=lon,
        )
        if not site.empty:
            sites.append(site)
    return sites


def locate_sites(gazetteer: Gazetteer, sites: list[SiteInput]) -> list[Location]:
    """Geocode each site; a point outside France is the row's error (DoctorError)."""
    located = []
    for n, site in enumerate(sites, start=2):
        try:
            located.append(locate(gazetteer, site.postal_code, site.commune, site.lat, site.lon))
        except DoctorError as exc:
            raise DoctorError(exc.field, f"site {n} : {exc.message}") from None
    return located


def sync_sites(
    session: Session,
    doctor: Doctor,
    current: list[DoctorSite],
    wanted: list[tuple[SiteInput, Location]],
    now: datetime,
) -> dict[str, tuple[Any, Any]]:
    """Make a doctor's secondary sites those of the file: a site already known at the same
    address is kept (a hand placement with it), others are added or removed. Returns the
    change for the doctor's event (empty when nothing changed)."""
    kept: list[DoctorSite] = []
    added: list[DoctorSite] = []
    left = list(current)
    for data, location in wanted:
        match = next((s for s in left if _same_place(s, data, location)), None)
        if match is not None:
            left.remove(match)
            apply_site(match, data, location)
            kept.append(match)
            continue
        site = DoctorSite(territory_id=doctor.territory_id, doctor_id=doctor.id, created_at=now)
        apply_site(site, data, location)
        session.add(site)
        added.append(site)
    for site in left:
        session.delete(site)
    if not added and not left:
        return {}
    before = [f"{s.address} {s.postal_code}".strip() for s in current]
    after = [f"{s.address} {s.postal_code}".strip() for s in kept + added]
    return {"sites": (before, after)}


def new_site_rows(
    territory_id: int, doctor_id: int, located: list[tuple[SiteInput, Location]], now: datetime
) -> list[dict[str, Any]]:
    """Rows for a bulk insert of a new doctor's secondary sites."""
    return [
        {
            "territory_id": territory_id,
            "doctor_id": doctor_id,
            "address": data.address.strip()[:300],
            "postal_code": data.postal_code.strip()[:5],
            "commune_insee": location.insee,
            "lat": location.lat,
            "lon": location.lon,
            "location_precision": location.precision,
            "created_at": now,
        }
        for data, location in located
    ]
