"""Exporting the doctors as the census survey file (CSV) that the import reads back."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from geo.communes import Gazetteer
from models import Accepting, Doctor, DoctorSite, LocationPrecision
from orientation.services.doctor_import import EXPORT_HEADERS
from orientation.services.doctor_sites import SITE_FIELDS, SITE_HEADERS


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, Accepting):
        return {"yes": "oui", "no": "non", "paused": "pause"}[value.value]
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    if value is None:
        return ""
    text = str(value)
    # A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@") and not _is_number(text) else text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _given(precision: LocationPrecision) -> bool:
    """Coordinates are written only for a point given or placed by hand: a commune's point
    written out would be read back as given coordinates (the export must import back
    unchanged), and left blank the import finds it again from the commune."""
    return precision in (LocationPrecision.ADDRESS, LocationPrecision.MANUAL)


def export_rows(
    doctors: Iterable[Doctor],
    gazetteer: Gazetteer,
    sites: dict[int, list[DoctorSite]] | None = None,
) -> Iterator[str]:
    """The survey columns, ';'-separated with a BOM so that French Excel opens it as is;
    then, when some doctor has secondary sites, "Adresse 2" ... "Longitude 2" and so on."""
    sites = sites or {}
    extra = max((len(v) for v in sites.values()), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(
        [
            *EXPORT_HEADERS.values(),
            *(f"{SITE_HEADERS[k]} {n}" for n in range(2, extra + 2) for k in SITE_FIELDS),
        ]
    )
    yield "\ufeff" + buffer.getvalue()

    def commune_name(insee: str | None) -> str:
        commune = gazetteer.get(insee) if insee else None
        return commune.name if commune else ""

    for d in doctors:
        buffer.seek(0)
        buffer.truncate()
        values = {key: getattr(d, key, None) for key in EXPORT_HEADERS}
        values["commune"] = commune_name(d.commune_insee)
        if not _given(d.location_precision):
            values["lat"] = values["lon"] = None
        row = [_cell(values[key]) for key in EXPORT_HEADERS]
        others = sites.get(d.id, [])
        for n in range(extra):
            site = others[n] if n < len(others) else None
            row += (
                [
                    _cell(site.address),
                    site.postal_code,
                    commune_name(site.commune_insee),
                    _cell(site.lat if _given(site.location_precision) else None),
                    _cell(site.lon if _given(site.location_precision) else None),
                ]
                if site is not None
                else [""] * len(SITE_FIELDS)
            )
        writer.writerow(row)
        yield buffer.getvalue()
