"""The coordinator's map as GeoJSON: the territory outline and each site of each volunteer.

Sized for a region (6,000 doctors under 1 MB): coordinates rounded to 5 decimals (about a
metre), short property keys, one query per table of plain columns read as the driver's
own tuples (status computed in SQL; no ORM objects, no result rows), the territory's communes
read as plain codes for the cached, simplified outline.

Property keys of a doctor feature: id, n (name), s (status: a available, f full, s stale),
p (places left, when available), c (index in the collection's "communes" list), v (home
visits radius km, or absent), u/e/d (does NOT take under-6 / elderly-dependent / ALD
follow-up: present only when 1), m (step-free access), x (1 on a secondary site).

A doctor's secondary sites ("sites secondaires") are listed once each in the foreign member
"sites" as [id, lon, lat, c]: the map draws them with the properties of the feature of the
same id (x set), which keeps a region's map under 1 MB. A doctor whose main practice is not
placed gets their first placed site as a full feature (with x) instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from json.encoder import encode_basestring as encode_string  # C, escapes for JSON
from typing import Any

import shapely
from sqlalchemy import and_, case, or_, select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer
from geo.territory import territory_shape
from models import (
    Accepting,
    Doctor,
    DoctorSite,
    LocationPrecision,
    Territory,
    TerritoryCommune,
    VolunteerStatus,
)
from orientation.services.overview import availability_cutoff

# Outline simplification: 0.0002° is ~15-20 m, invisible at the zooms a CPTS map uses.
OUTLINE_TOLERANCE = 0.0002


@dataclass(frozen=True)
class MapFilters:
    under_6: bool = False
    elderly_dependent: bool = False
    ald_followup: bool = False
    home_visits: bool = False


def _territory_codes(session: Session, territory_id: int) -> frozenset[str]:
    # Plain strings rather than the 647 TerritoryCommune objects of a département loaded
    # through the relationship (a third of the map's time for a region).
    links = TerritoryCommune.__table__.c
    query = select(links.insee).where(links.territory_id == territory_id)
    return frozenset(session.connection().execute(query).scalars())


@lru_cache(maxsize=64)
def _outline(codes: frozenset[str]) -> dict[str, Any]:
    # Cached per set of communes: simplifying a region's outline takes tens of milliseconds.
    shape = territory_shape(codes)
    simple = shapely.set_precision(
        shapely.simplify(shape.geometry, OUTLINE_TOLERANCE, preserve_topology=True), 1e-5
    )
    result: dict[str, Any] = json.loads(shapely.to_geojson(simple))
    return result


def _point_json(
    row: Sequence[Any], lon: float, lat: float, commune: int, secondary: str = ""
) -> str:
    """One doctor's feature; `row` as selected by `_DOCTOR_COLUMNS` (raw driver values)."""
    (doctor_id, first_name, last_name, capacity, under_6, elderly, ald, home_visits, radius,
     step_free, fresh, accepting_now) = row[:12]  # fmt: skip
    status = ("a" if accepting_now and capacity > 0 else "f") if fresh else "s"
    extra = secondary
    if home_visits:
        extra += f',"v":{float(radius):g}'
    if not under_6:
        extra += ',"u":1'
    if not elderly:
        extra += ',"e":1'
    if not ald:
        extra += ',"d":1'
    if step_free:
        extra += ',"m":1'
    if status == "a":
        extra += f',"p":{int(capacity)}'
    # Written by hand rather than through json.dumps of nested dicts: three times faster for
    # a region's 6,000 points, and every value is a number or an escaped string.
    return (
        f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{lon:.5f},{lat:.5f}]}},'
        f'"properties":{{"id":{doctor_id},"n":{encode_string(f"{first_name} {last_name}")},'
        f'"s":"{status}","c":{commune}{extra}}}}}'
    )


def map_geojson(
    session: Session, gazetteer: Gazetteer, territory: Territory, now: datetime, f: MapFilters
) -> str:
    """The FeatureCollection the map draws, as JSON text: the outline first, then the doctors.

    Commune names are listed once in the foreign member "communes"; a point's "c" indexes it.
    """
    cutoff = availability_cutoff(territory, now)
    d = Doctor
    accepting_now = or_(
        d.accepting == Accepting.YES,
        and_(d.accepting == Accepting.PAUSED, d.paused_until <= now.date()),
    )
    where = [
        d.territory_id == territory.id,
        d.active.is_(True),
        d.volunteer_status == VolunteerStatus.VOLUNTEER,
    ]
    if f.under_6:
        where.append(d.accepts_under_6.is_(True))
    if f.elderly_dependent:
        where.append(d.accepts_elderly_dependent.is_(True))
    if f.ald_followup:
        where.append(d.accepts_ald_followup.is_(True))
    if f.home_visits:
        where.append(d.home_visits.is_(True))
    query = select(
        d.id, d.first_name, d.last_name, d.capacity_left, d.accepts_under_6,
        d.accepts_elderly_dependent, d.accepts_ald_followup, d.home_visits,
        d.home_visit_radius_km, d.step_free_access,
        case((d.confirmed_at >= cutoff, 1), else_=0), case((accepting_now, 1), else_=0),
        # Where the main practice is drawn (placed) and which commune it is in.
        case((d.location_precision == LocationPrecision.NONE, 0), else_=1),
        d.lon, d.lat, d.commune_insee,
    ).where(*where).order_by(d.id)  # fmt: skip
    connection = session.connection()
    # The driver's own tuples: no result processing is needed for these columns (numbers,
    # texts, 0/1 flags) and building 6,000 Row objects would cost a tenth of the time.
    doctors = {row[0]: row for row in connection.execute(query).cursor.fetchall()}
    commune_index: dict[str | None, int] = {}
    index = commune_index.setdefault
    points = []
    drawn: set[int] = set()  # doctors with a full feature
    for doctor_id, row in doctors.items():
        placed, lon, lat, insee = row[12:]
        if placed and lat is not None and lon is not None:
            points.append(_point_json(row, lon, lat, index(insee, len(commune_index))))
            drawn.add(doctor_id)
    # Two plain queries rather than a join: each reads one table by its territory index.
    s = DoctorSite
    sites = []
    placed_sites = (
        select(s.doctor_id, s.lon, s.lat, s.commune_insee)
        .where(
            s.territory_id == territory.id,
            s.location_precision != LocationPrecision.NONE,
            s.lat.is_not(None),
            s.lon.is_not(None),
        )
        .order_by(s.doctor_id, s.id)
    )
    for doctor_id, lon, lat, insee in connection.execute(placed_sites).cursor.fetchall():
        doctor = doctors.get(doctor_id)
        if doctor is None:  # not shown (not a volunteer, inactive, filtered out)
            continue
        commune = index(insee, len(commune_index))
        if doctor_id not in drawn:
            points.append(_point_json(doctor, lon, lat, commune, ',"x":1'))
            drawn.add(doctor_id)
            continue
        sites.append(f"[{doctor_id},{lon:.5f},{lat:.5f},{commune}]")
    names = []
    for insee in commune_index:
        commune_row = gazetteer.get(insee) if insee else None
        names.append(commune_row.name if commune_row else "")
    outline_feature = json.dumps(
        {
            "type": "Feature",
            "geometry": _outline(_territory_codes(session, territory.id)),
            "properties": {"kind": "outline"},
        },
        separators=(",", ":"),
    )
    return (
        '{"type":"FeatureCollection","communes":'
        + json.dumps(names, ensure_ascii=False, separators=(",", ":"))
        + ',"sites":['
        + ",".join(sites)
        + '],"features":['
        + ",".join([outline_feature, *points])
        + "]}"
    )
