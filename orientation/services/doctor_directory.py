"""Pre-filling the GPs of a territory from the national directory (Annuaire Santé, RPPS).

The public extract 'PS_LibreAcces_Personne_activite_*.txt' (Agence du Numérique en Santé,
annuaire.sante.fr, "Extractions en libre accès", Licence Ouverte) has one line per activity of
a health professional, '|'-separated, with a header row. We keep doctors (profession code 10,
'Médecin') whose savoir-faire is general practice, at their activity places in the
territory's communes. Each such place becomes a site of the doctor: the first the main
practice, the others secondary sites ("sites secondaires"). They arrive as 'not yet
volunteer': being in the directory is not consenting to take new patients; they or the
coordinator say so later.

Column names, codes and layout were checked against the extract's real header row as public
code that reads it reproduces it (e.g. the parsers of the Annuaire Santé files on GitHub that
read "Identifiant PP", "Code savoir-faire" and "Code commune (coord. structure)", and an
Île-de-France GP-supply study that keeps profession "10" with savoir-faire SM26, SM53 or SM54):
- "Identifiant PP" is the 11-digit RPPS for "Type d'identifiant PP" 8 (9-digit ADELI numbers,
  type 0, are not RPPS numbers and are skipped); "Identification nationale PP" is the same
  number with the type digit in front (8 + RPPS).
- "Code commune (coord. structure)" is the INSEE code and may be empty; then the postal code
  and "Libellé commune (coord. structure)" place the activity.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer, normalise_name
from models import (
    Doctor,
    DoctorEvent,
    DoctorSite,
    LocationPrecision,
    Territory,
    VolunteerStatus,
)
from orientation.services.contact import (
    InvalidEmail,
    InvalidPhone,
    normalise_email,
    normalise_phone,
)
from orientation.services.doctors import luhn_valid

# Column names as the extract spells them.
COL_ID = "Identifiant PP"
COL_LAST = "Nom d'exercice"
COL_FIRST = "Prénom d'exercice"
COL_PROFESSION_CODE = "Code profession"
COL_PROFESSION = "Libellé profession"
COL_SKILL_CODE = "Code savoir-faire"
COL_SKILL = "Libellé savoir-faire"
COL_NUMBER = "Numéro Voie (coord. structure)"
COL_STREET_TYPE = "Libellé type de voie (coord. structure)"
COL_STREET = "Libellé Voie (coord. structure)"
COL_POSTAL_CODE = "Code postal (coord. structure)"
COL_INSEE = "Code commune (coord. structure)"
COL_COMMUNE = "Libellé commune (coord. structure)"
COL_PHONE = "Téléphone (coord. structure)"
COL_EMAIL = "Adresse e-mail (coord. structure)"
REQUIRED = (COL_ID, COL_LAST, COL_PROFESSION, COL_SKILL, COL_INSEE)
DOCTOR_PROFESSION_CODE = "10"  # "Médecin"
# Savoir-faire of general practice: SM54 "Médecine générale", SM53 "Spécialiste en médecine
# générale", SM26 "Qualifié en médecine générale" (the earlier code list had SM54 only).
GENERAL_PRACTICE_CODES = {"SM26", "SM53", "SM54"}


class DirectoryRefused(ValueError):
    """The file is not a PS_LibreAcces extract."""


@dataclass
class DirectoryReport:
    lines: int = 0
    created: int = 0
    already_known: int = 0
    sites: int = 0  # secondary sites added (a GP's other activity places)


def _is_gp(row: dict[str, str]) -> bool:
    code = (row.get(COL_PROFESSION_CODE) or "").strip()
    label = normalise_name(row.get(COL_PROFESSION) or "")
    if code != DOCTOR_PROFESSION_CODE and label != "medecin":
        return False
    skill = (row.get(COL_SKILL_CODE) or "").strip()
    if skill:
        return skill in GENERAL_PRACTICE_CODES
    return "medecine generale" in normalise_name(row.get(COL_SKILL) or "")


def _contact(row: dict[str, str]) -> tuple[str, str]:
    phone = email = ""
    try:
        phone = normalise_phone(row.get(COL_PHONE, "")) if row.get(COL_PHONE) else ""
    except InvalidPhone:
        phone = ""
    try:
        email = normalise_email(row.get(COL_EMAIL, "")) if row.get(COL_EMAIL) else ""
    except InvalidEmail:
        email = ""
    return phone, email


@dataclass(frozen=True)
class _Place:
    """One activity place of a GP in the territory."""

    address: str
    postal_code: str
    insee: str | None
    lat: float | None
    lon: float | None

    @property
    def precision(self) -> LocationPrecision:
        return LocationPrecision.COMMUNE if self.lat is not None else LocationPrecision.NONE

    def same(self, address: str, insee: str | None) -> bool:
        return self.insee == insee and " ".join(self.address.lower().split()) == " ".join(
            address.lower().split()
        )


def _place(row: dict[str, str], gazetteer: Gazetteer, communes: set[str]) -> _Place | None:
    """The activity's place when it is in the territory (None otherwise)."""
    insee = (row.get(COL_INSEE) or "").strip()
    postal_code = (row.get(COL_POSTAL_CODE) or "").strip()[:5]
    if not insee:
        found = gazetteer.find(postal_code, (row.get(COL_COMMUNE) or "").strip())
        insee = found.insee if found is not None else ""
    if insee not in communes:
        return None
    commune = gazetteer.get(insee)
    street = " ".join(
        part.strip()
        for part in (row.get(COL_NUMBER), row.get(COL_STREET_TYPE), row.get(COL_STREET))
        if part and part.strip()
    )
    return _Place(
        address=street[:300],
        postal_code=postal_code,
        insee=insee if commune else None,
        lat=commune.lat if commune else None,
        lon=commune.lon if commune else None,
    )


def _site(territory_id: int, doctor_id: int, place: _Place, now: datetime) -> DoctorSite:
    return DoctorSite(
        territory_id=territory_id,
        doctor_id=doctor_id,
        address=place.address,
        postal_code=place.postal_code,
        commune_insee=place.insee,
        lat=place.lat,
        lon=place.lon,
        location_precision=place.precision,
        created_at=now,
    )


def import_directory(
    session: Session,
    gazetteer: Gazetteer,
    territory: Territory,
    lines: Iterable[str],
    *,
    now: datetime,
    actor_label: str,
) -> DirectoryReport:
    """Add the territory's GPs found in the extract as 'not yet volunteer', each with all
    their activity places in the territory; the caller commits.

    A GP already known who is still 'not yet volunteer' gets the places the registry lacks
    as secondary sites; the records of volunteers (and of doctors who declined) are the
    coordinator's and the doctor's, and stay as they are.
    """
    reader = csv.DictReader(lines, delimiter="|", quoting=csv.QUOTE_NONE)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise DirectoryRefused(
            "Ce fichier n'est pas un extrait PS_LibreAcces (colonnes manquantes : "
            + ", ".join(missing)
            + ")."
        )
    communes = set(territory.insee_codes)
    report = DirectoryReport()
    first_rows: dict[str, dict[str, str]] = {}
    places: dict[str, list[_Place]] = {}
    for row in reader:
        report.lines += 1
        rpps = (row.get(COL_ID) or "").strip()
        if len(rpps) != 11 or not rpps.isdigit() or not luhn_valid(rpps) or not _is_gp(row):
            continue
        place = _place(row, gazetteer, communes)
        if place is None:
            continue
        known = places.setdefault(rpps, [])
        if not any(p.same(place.address, place.insee) for p in known):
            known.append(place)
        first_rows.setdefault(rpps, row)
    existing = {
        d.rpps: d
        for d in session.scalars(select(Doctor).where(Doctor.territory_id == territory.id))
        if d.rpps in places
    }
    added: list[Doctor] = []
    for rpps, row in first_rows.items():
        if rpps in existing:
            report.already_known += 1
            continue
        main = places[rpps][0]
        phone, email = _contact(row)
        doctor = Doctor(
            territory_id=territory.id,
            rpps=rpps,
            first_name=(row.get(COL_FIRST) or "").strip().title()[:100],
            last_name=(row.get(COL_LAST) or "").strip().upper()[:100],
            practice_address=main.address,
            postal_code=main.postal_code,
            commune_insee=main.insee,
            lat=main.lat,
            lon=main.lon,
            location_precision=main.precision,
            phone=phone,
            email=email,
            preferred_channel="email" if email else "sms",
            volunteer_status=VolunteerStatus.NOT_YET,
            created_at=now,
        )
        session.add(doctor)
        added.append(doctor)
    session.flush()
    for doctor in added:
        session.add_all(_site(territory.id, doctor.id, p, now) for p in places[doctor.rpps][1:])
        report.sites += len(places[doctor.rpps]) - 1
    session.add_all(
        DoctorEvent(
            territory_id=territory.id,
            doctor_id=d.id,
            at=now,
            source="directory",
            actor_label=actor_label,
            action="created",
            changes={},
        )
        for d in added
    )
    report.created = len(added)
    _add_missing_sites(session, territory, existing, places, report, now, actor_label)
    return report


def _add_missing_sites(
    session: Session,
    territory: Territory,
    existing: dict[str, Doctor],
    places: dict[str, list[_Place]],
    report: DirectoryReport,
    now: datetime,
    actor_label: str,
) -> None:
    """Known 'not yet volunteer' GPs: add the directory's places they lack, as sites."""
    pending = {r: d for r, d in existing.items() if d.volunteer_status is VolunteerStatus.NOT_YET}
    if not pending:
        return
    current: dict[int, list[tuple[str, str | None]]] = {}
    for site in session.scalars(select(DoctorSite).where(DoctorSite.territory_id == territory.id)):
        current.setdefault(site.doctor_id, []).append((site.address, site.commune_insee))
    for rpps, doctor in pending.items():
        have = [(doctor.practice_address, doctor.commune_insee), *current.get(doctor.id, [])]
        new = [p for p in places[rpps] if not any(p.same(a, i) for a, i in have)]
        if not new:
            continue
        session.add_all(_site(territory.id, doctor.id, p, now) for p in new)
        session.add(
            DoctorEvent(
                territory_id=territory.id,
                doctor_id=doctor.id,
                at=now,
                source="directory",
                actor_label=actor_label,
                action="site_added",
                changes={"sites": [None, [f"{p.address} {p.postal_code}" for p in new]]},
            )
        )
        report.sites += len(new)
