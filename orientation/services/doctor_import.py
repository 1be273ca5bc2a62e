"""Importing and exporting the census survey (recensement) that a CPTS sends to its GPs, as CSV.

Files come from Excel as often as not: a BOM, semicolons (the French default) or commas,
UTF-8 or Windows-1252. Each rejected row is reported with its line number and reason; rows
are matched on the RPPS number, so importing the same file twice creates nothing twice.

A doctor's other practice sites are numbered columns on the same row ("Adresse 2",
"Code postal 2", "Commune 2", "Latitude 2", "Longitude 2", then "... 3"): one row per doctor,
as the export writes it. A file with such columns sets each doctor's secondary sites to those
of the row (a site already known at the same address keeps its hand placement); a file
without them leaves the sites alone.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer, normalise_name
from models import Accepting, Doctor, DoctorEvent, DoctorSite, Territory, VolunteerStatus
from orientation.services.bulk import insert_many
from orientation.services.contact import (
    InvalidEmail,
    InvalidPhone,
    is_mobile,
    normalise_email,
    normalise_phone,
)
from orientation.services.doctor_availability import AVAILABILITY_FIELDS
from orientation.services.doctor_sites import (
    SITE_FIELDS,
    SiteInput,
    locate_sites,
    new_site_rows,
    parse_site_columns,
    site_column,
    sync_sites,
    territory_sites,
)
from orientation.services.doctors import (
    DOCTOR_FIELDS,
    DoctorError,
    DoctorInput,
    Location,
    apply_input,
    check_rpps,
    jsonable,
    locate,
)

# Column -> the header names people use for it (compared once folded: case, accents, spaces).
COLUMNS: dict[str, tuple[str, ...]] = {
    "rpps": ("rpps", "numero rpps", "n rpps"),
    "last_name": ("nom",),
    "first_name": ("prenom",),
    "practice_address": ("adresse", "adresse du cabinet"),
    "postal_code": ("code postal", "cp"),
    "commune": ("commune", "ville"),
    "lat": ("latitude", "lat"),
    "lon": ("longitude", "lon", "lng"),
    "phone": ("telephone", "tel"),
    "email": ("email", "e mail", "courriel"),
    "accepting": ("accepte de nouveaux patients", "accepte", "nouveaux patients"),
    "paused_until": ("en pause jusqu au", "pause jusqu au"),
    "capacity_left": ("combien", "nombre de nouveaux patients", "places"),
    "accepts_under_6": ("enfants de moins de 6 ans", "moins de 6 ans"),
    "accepts_elderly_dependent": ("personnes agees et dependantes", "personnes agees"),
    "accepts_ald_followup": ("suivi ald", "ald"),
    "home_visits": ("visites a domicile", "visites"),
    "home_visit_radius_km": ("rayon des visites km", "rayon km", "rayon"),
    "languages": ("langues",),
    "step_free_access": ("acces de plain pied", "acces pmr", "pmr"),
}
# The header row written by the export (and the template CPTS can send out).
EXPORT_HEADERS = {
    "rpps": "RPPS",
    "last_name": "Nom",
    "first_name": "Prénom",
    "practice_address": "Adresse",
    "postal_code": "Code postal",
    "commune": "Commune",
    "lat": "Latitude",
    "lon": "Longitude",
    "phone": "Téléphone",
    "email": "E-mail",
    "accepting": "Accepte de nouveaux patients",
    "paused_until": "En pause jusqu'au",
    "capacity_left": "Combien",
    "accepts_under_6": "Enfants de moins de 6 ans",
    "accepts_elderly_dependent": "Personnes âgées et dépendantes",
    "accepts_ald_followup": "Suivi ALD",
    "home_visits": "Visites à domicile",
    "home_visit_radius_km": "Rayon des visites (km)",
    "languages": "Langues",
    "step_free_access": "Accès de plain-pied",
}
_HEADER_LOOKUP = {alias: key for key, aliases in COLUMNS.items() for alias in aliases}
_NUMBERED = re.compile(r"^(.+) ([2-9]|[1-9][0-9])$")  # "code postal 2": a secondary site


def _header_key(name: str) -> str:
    """'Rayon des visites (km)' -> 'rayon des visites km': case, accents, punctuation folded."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", normalise_name(name)).split())


_YES = {"oui", "o", "yes", "y", "1", "x", "vrai", "true"}
_NO = {"non", "n", "no", "0", "faux", "false"}


class ImportRefused(ValueError):
    """The whole file is unusable (encoding, missing columns); nothing was imported."""


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return self.created + self.updated + self.unchanged


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), else Windows-1252 (Excel's 'CSV' on a French PC)."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def _rows(text: str) -> tuple[dict[int, str], Iterator[tuple[int, list[str]]]]:
    first_line = text.split("\n", 1)[0]
    try:
        dialect: Any = csv.Sniffer().sniff(first_line, delimiters=";,\t|")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header = next(reader, None)
    if not header:
        raise ImportRefused("Le fichier est vide.")
    columns: dict[int, str] = {}
    for index, name in enumerate(header):
        folded = _header_key(name)
        key = _HEADER_LOOKUP.get(folded)
        numbered = _NUMBERED.match(folded) if key is None else None
        if numbered and _HEADER_LOOKUP.get(numbered.group(1)) in SITE_FIELDS:
            key = site_column(_HEADER_LOOKUP[numbered.group(1)], int(numbered.group(2)))
        if key is not None and key not in columns.values():
            columns[index] = key
    return columns, ((reader.line_num, row) for row in reader)


def _fold(value: str) -> str:
    # Fast path for the usual plain answers (oui, non, 1, x); accents and case otherwise.
    plain = value.strip().lower()
    return plain if plain.isascii() and plain.isalnum() else normalise_name(value)


def _bool(value: str, label: str, default: bool) -> bool:
    folded = _fold(value)
    if not folded:
        return default
    if folded in _YES:
        return True
    if folded in _NO:
        return False
    raise ValueError(f"« {value} » pour {label} : attendu oui ou non")


def _number(value: str, label: str) -> float | None:
    text = value.strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"« {value} » pour {label} : attendu un nombre") from None


def _date(value: str) -> date | None:
    text = value.strip()
    if not text:
        return None
    for pattern in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    raise ValueError(f"date « {value} » illisible (attendu JJ/MM/AAAA)")


def _accepting(value: str) -> Accepting:
    folded = _fold(value)
    if folded in _YES:
        return Accepting.YES
    if folded in _NO or not folded:
        return Accepting.NO
    if folded.startswith("pause") or folded.startswith("en pause"):
        return Accepting.PAUSED
    raise ValueError(f"« {value} » pour « accepte de nouveaux patients » : oui, non ou pause")


def parse_row(values: dict[str, str]) -> DoctorInput:
    """One survey row as a DoctorInput; raise ValueError/DoctorError with a French reason."""
    lat = _number(values.get("lat", ""), "la latitude")
    lon = _number(values.get("lon", ""), "la longitude")
    if (lat is None) != (lon is None):
        raise ValueError("latitude et longitude vont ensemble")
    phone = values.get("phone", "").strip()
    phone = normalise_phone(phone) if phone else ""
    email = values.get("email", "").strip()
    accepting = _accepting(values.get("accepting", ""))
    paused_until = _date(values.get("paused_until", ""))
    capacity = _number(values.get("capacity_left", ""), "« combien »")
    radius = _number(values.get("home_visit_radius_km", ""), "le rayon des visites")
    home_visits = _bool(values.get("home_visits", ""), "les visites à domicile", False)
    return DoctorInput(
        rpps=check_rpps(values.get("rpps", "")),
        first_name=values.get("first_name", "").strip()[:100],
        last_name=values.get("last_name", "").strip()[:100],
        practice_address=values.get("practice_address", "").strip()[:300],
        postal_code=values.get("postal_code", "").strip()[:5],
        commune=values.get("commune", "").strip(),
        lat=lat,
        lon=lon,
        phone=phone,
        email=normalise_email(email) if email else "",
        # SMS only to a mobile (a landline never receives it); a known doctor keeps theirs.
        preferred_channel="sms" if phone and not email and is_mobile(phone) else "email",
        volunteer_status=VolunteerStatus.VOLUNTEER,
        accepting=accepting,
        paused_until=paused_until if accepting is Accepting.PAUSED else None,
        capacity_left=max(0, int(capacity or 0)),
        accepts_under_6=_bool(values.get("accepts_under_6", ""), "les moins de 6 ans", True),
        accepts_elderly_dependent=_bool(
            values.get("accepts_elderly_dependent", ""), "les personnes âgées", True
        ),
        accepts_ald_followup=_bool(values.get("accepts_ald_followup", ""), "le suivi ALD", True),
        home_visits=home_visits,
        home_visit_radius_km=(radius or 0.0) if home_visits else 0.0,
        languages=";".join(
            p.strip() for p in values.get("languages", "").replace(",", ";").split(";") if p
        )[:200],
        step_free_access=_bool(values.get("step_free_access", ""), "l'accès de plain-pied", False),
    )


REQUIRED = ("rpps", "last_name")


def _new_row(
    territory_id: int, data: DoctorInput, location: Location, now: datetime
) -> dict[str, Any]:
    values = {name: getattr(data, name) for name in DOCTOR_FIELDS}
    values.update(
        territory_id=territory_id,
        rpps=data.rpps,
        commune_insee=location.insee,
        lat=location.lat,
        lon=location.lon,
        location_precision=location.precision,
        confirmed_at=now,
        confirmed_by="recensement (import)",
        created_at=now,
        active=True,
        is_demo=False,
        link_version=0,
    )
    return values


def _event(
    territory_id: int,
    doctor_id: int,
    now: datetime,
    actor_label: str,
    action: str,
    changes: dict[str, tuple[Any, Any]],
) -> dict[str, Any]:
    return {
        "territory_id": territory_id,
        "doctor_id": doctor_id,
        "at": now,
        "source": "import",
        "actor_label": actor_label,
        "action": action,
        "changes": {k: [jsonable(a), jsonable(b)] for k, (a, b) in changes.items()},
    }


def _keep_known(doctor: Doctor, data: DoctorInput) -> None:
    """Keep what the survey does not hold, so that importing the export changes nothing.

    The file has no note, no participation and no preferred channel: a known doctor keeps
    theirs. A doctor not yet volunteer (or who declined) whose row brings a new availability,
    other than "non", answered the census: they join, as with the invitation's link.
    """
    data.coordinator_note = doctor.coordinator_note
    data.volunteer_status = doctor.volunteer_status
    answered = any(
        getattr(data, name) != getattr(doctor, name)
        for name in AVAILABILITY_FIELDS
        if name != "volunteer_status"
    )
    if (
        doctor.volunteer_status in (VolunteerStatus.NOT_YET, VolunteerStatus.DECLINED)
        and answered
        and data.accepting is not Accepting.NO
    ):
        data.volunteer_status = VolunteerStatus.VOLUNTEER
    if doctor.preferred_channel != "sms" or (data.phone and is_mobile(data.phone)):
        data.preferred_channel = doctor.preferred_channel


def import_doctors(
    session: Session,
    gazetteer: Gazetteer,
    territory: Territory,
    raw: bytes,
    *,
    now: datetime,
    actor_label: str,
) -> ImportReport:
    """Create or update (by RPPS) the doctors of a survey file; the caller commits."""
    columns, rows = _rows(decode(raw))
    present = set(columns.values())
    missing = [EXPORT_HEADERS[c] for c in REQUIRED if c not in present]
    if "postal_code" not in present and not {"lat", "lon"} <= present:
        missing.append("Code postal (ou Latitude et Longitude)")
    if missing:
        raise ImportRefused("Colonnes manquantes : " + ", ".join(missing) + ".")
    existing = {
        d.rpps: d
        for d in session.scalars(select(Doctor).where(Doctor.territory_id == territory.id))
    }
    site_numbers = {
        int(number)
        for base, _, number in (c.rpartition("_") for c in present)
        if base in SITE_FIELDS and number.isdigit()
    }
    current_sites = territory_sites(session, territory.id) if site_numbers else {}
    report = ImportReport()
    seen: dict[str, int] = {}
    new_rows: list[dict[str, Any]] = []
    new_sites: list[list[tuple[SiteInput, Location]]] = []
    events: list[dict[str, Any]] = []
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        values = {key: row[i] if i < len(row) else "" for i, key in columns.items()}
        try:
            data = parse_row(values)
            location = locate(gazetteer, data.postal_code, data.commune, data.lat, data.lon)
            sites = parse_site_columns(values, site_numbers, _number) if site_numbers else []
            located = list(zip(sites, locate_sites(gazetteer, sites), strict=True))
        except DoctorError as exc:
            report.rejected.append((line, exc.message))
            continue
        except (ValueError, InvalidPhone, InvalidEmail) as exc:
            report.rejected.append((line, str(exc)))
            continue
        if data.rpps in seen:
            report.rejected.append((line, f"RPPS {data.rpps} déjà présent ligne {seen[data.rpps]}"))
            continue
        seen[data.rpps] = line
        doctor = existing.get(data.rpps)
        if doctor is None:
            new_rows.append(_new_row(territory.id, data, location, now))
            new_sites.append(located)
            report.created += 1
            continue
        _keep_known(doctor, data)
        changes = apply_input(doctor, data, location, now, "recensement (import)")
        if site_numbers:
            changes.update(
                sync_sites(session, doctor, current_sites.get(doctor.id, []), located, now)
            )
        if not changes:
            report.unchanged += 1
            continue
        report.updated += 1
        events.append(_event(territory.id, doctor.id, now, actor_label, "updated", changes))
    # New doctors and the events go in as bulk inserts (no unit of work per object): a
    # region's census of 10,000 doctors imports in seconds.
    session.flush()
    site_rows: list[dict[str, Any]] = []
    ids = insert_many(session, Doctor, new_rows, want_ids=True)
    for doctor_id, located in zip(ids, new_sites, strict=True):
        events.append(_event(territory.id, doctor_id, now, actor_label, "created", {}))
        site_rows += new_site_rows(territory.id, doctor_id, located, now)
    insert_many(session, DoctorSite, site_rows)
    insert_many(session, DoctorEvent, events)
    return report
