"""Pre-filling the GPs of a territory from the national directory (Annuaire Santé, RPPS).

The public extract 'PS_LibreAcces_Personne_activite_*.txt' has one line per activity of a
health professional, '|'-separated, with a header row. We keep doctors (profession 'Médecin')
whose savoir-faire is general practice and whose practice is in one of the territory's
communes. They arrive as 'not yet volunteer': being in the directory is not consenting to
take new patients; they or the coordinator say so later.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer, normalise_name
from models import Doctor, DoctorEvent, LocationPrecision, Territory, VolunteerStatus
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
COL_PROFESSION = "Libellé profession"
COL_SKILL_CODE = "Code savoir-faire"
COL_SKILL = "Libellé savoir-faire"
COL_NUMBER = "Numéro Voie (coord. structure)"
COL_STREET_TYPE = "Libellé type de voie (coord. structure)"
COL_STREET = "Libellé Voie (coord. structure)"
COL_POSTAL_CODE = "Code postal (coord. structure)"
COL_INSEE = "Code commune (coord. structure)"
COL_PHONE = "Téléphone (coord. structure)"
COL_EMAIL = "Adresse e-mail (coord. structure)"
REQUIRED = (COL_ID, COL_LAST, COL_PROFESSION, COL_SKILL, COL_INSEE)
GENERAL_PRACTICE_CODES = {"SM54"}  # "Médecine générale" (and "Qualifié en médecine générale")


class DirectoryRefused(ValueError):
    """The file is not a PS_LibreAcces extract."""


@dataclass
class DirectoryReport:
    lines: int = 0
    created: int = 0
    already_known: int = 0


def _is_gp(row: dict[str, str]) -> bool:
    if normalise_name(row.get(COL_PROFESSION, "")) != "medecin":
        return False
    code = row.get(COL_SKILL_CODE, "").strip()
    return code in GENERAL_PRACTICE_CODES or "medecine generale" in normalise_name(
        row.get(COL_SKILL, "")
    )


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


def import_directory(
    session: Session,
    gazetteer: Gazetteer,
    territory: Territory,
    lines: Iterable[str],
    *,
    now: datetime,
    actor_label: str,
) -> DirectoryReport:
    """Add the territory's GPs found in the extract as 'not yet volunteer'; the caller commits."""
    reader = csv.DictReader(lines, delimiter="|", quoting=csv.QUOTE_NONE)
    missing = [c for c in REQUIRED if c not in (reader.fieldnames or ())]
    if missing:
        raise DirectoryRefused(
            "Ce fichier n'est pas un extrait PS_LibreAcces (colonnes manquantes : "
            + ", ".join(missing)
            + ")."
        )
    communes = set(territory.insee_codes)
    known = set(session.scalars(select(Doctor.rpps).where(Doctor.territory_id == territory.id)))
    report = DirectoryReport()
    added: list[Doctor] = []
    added_rpps: set[str] = set()
    seen_known: set[str] = set()  # doctors have one line per activity: count each once
    for row in reader:
        report.lines += 1
        insee = (row.get(COL_INSEE) or "").strip()
        rpps = (row.get(COL_ID) or "").strip()
        if insee not in communes or not _is_gp(row):
            continue
        if len(rpps) != 11 or not rpps.isdigit() or not luhn_valid(rpps):
            continue
        if rpps in known:
            if rpps not in added_rpps and rpps not in seen_known:
                seen_known.add(rpps)
                report.already_known += 1
            continue
        known.add(rpps)
        added_rpps.add(rpps)
        commune = gazetteer.get(insee)
        phone, email = _contact(row)
        street = " ".join(
            part.strip()
            for part in (row.get(COL_NUMBER), row.get(COL_STREET_TYPE), row.get(COL_STREET))
            if part and part.strip()
        )
        doctor = Doctor(
            territory_id=territory.id,
            rpps=rpps,
            first_name=(row.get(COL_FIRST) or "").strip().title()[:100],
            last_name=(row.get(COL_LAST) or "").strip().upper()[:100],
            practice_address=street[:300],
            postal_code=(row.get(COL_POSTAL_CODE) or "").strip()[:5],
            commune_insee=insee if commune else None,
            lat=commune.lat if commune else None,
            lon=commune.lon if commune else None,
            location_precision=LocationPrecision.COMMUNE if commune else LocationPrecision.NONE,
            phone=phone,
            email=email,
            preferred_channel="email" if email else "sms",
            volunteer_status=VolunteerStatus.NOT_YET,
            created_at=now,
        )
        session.add(doctor)
        added.append(doctor)
    session.flush()
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
    return report
