"""The coordinator's map as GeoJSON: the territory outline and each site of each volunteer.

Sized for a region (6,000 doctors under 1 MB): coordinates rounded to 5 decimals (about a
metre), short property keys, one query of plain columns (status computed in SQL), no ORM
objects.

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
from models import Accepting, Doctor, DoctorSite, LocationPrecision, Territory, VolunteerStatus
from orientation.services.overview import availability_cutoff

# Outline simplification: 0.0002° is ~15-20 m, invisible at the zooms a CPTS map uses.
OUTLINE_TOLERANCE = 0.0002


@dataclass(frozen=True)
class MapFilters:
    under_6: bool = False
    elderly_dependent: bool = False
    ald_followup: bool = False
    home_visits: bool = False


def outline(territory: Territory) -> dict[str, Any]:
    """The territory outline, simplified and rounded for the map."""
    return _outline(frozenset(territory.insee_codes))


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
    row: tuple[Any, ...], commune_index: dict[str | None, int], secondary: str = ""
) -> str:
    (
        doctor_id,
        first_name,
        last_name,
        lat,
        lon,
        insee,
        capacity,
        under_6,
        elderly,
        ald,
        home_visits,
        radius,
        step_free,
        fresh,
        accepting_now,
    ) = row
    status = ("a" if accepting_now and capacity > 0 else "f") if fresh else "s"
    extra = ""
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
    extra += secondary
    name = encode_string(f"{first_name} {last_name}")
    # Written by hand rather than through json.dumps of nested dicts: three times faster for
    # a region's 6,000 points, and every value is a number or an escaped string.
    return (
        f'{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{lon:.5f},{lat:.5f}]}},'
        f'"properties":{{"id":{int(doctor_id)},"n":{name},"s":"{status}",'
        f'"c":{commune_index.setdefault(insee, len(commune_index))}{extra}}}}}'
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
        d.id,
        d.first_name,
        d.last_name,
        d.lat,
        d.lon,
        d.commune_insee,
        d.capacity_left,
        d.accepts_under_6,
        d.accepts_elderly_dependent,
        d.accepts_ald_followup,
        d.home_visits,
        d.home_visit_radius_km,
        d.step_free_access,
        case((d.confirmed_at >= cutoff, 1), else_=0),
        case((accepting_now, 1), else_=0),
        case((d.location_precision == LocationPrecision.NONE, 0), else_=1),
    ).where(*where)
    commune_index: dict[str | None, int] = {}
    points = []
    rows: dict[int, tuple[Any, ...]] = {}
    drawn: set[int] = set()  # doctors with a full feature
    for row in session.execute(query.order_by(d.id)):
        doctor: tuple[Any, ...] = tuple(row[:-1])
        rows[row.id] = doctor
        if row[-1] and row.lat is not None and row.lon is not None:
            points.append(_point_json(doctor, commune_index))
            drawn.add(row.id)
    # Two plain queries rather than a join: each reads one table by its territory index.
    s = DoctorSite
    sites = []
    for doctor_id, lat, lon, insee in session.execute(
        select(s.doctor_id, s.lat, s.lon, s.commune_insee)
        .where(
            s.territory_id == territory.id,
            s.location_precision != LocationPrecision.NONE,
            s.lat.is_not(None),
            s.lon.is_not(None),
        )
        .order_by(s.doctor_id, s.id)
    ):
        shown = rows.get(doctor_id)
        if shown is None:  # not shown (not a volunteer, inactive, filtered out)
            continue
        if doctor_id not in drawn:
            site_row = (*shown[:3], lat, lon, insee, *shown[6:])
            points.append(_point_json(site_row, commune_index, ',"x":1'))
            drawn.add(doctor_id)
            continue
        c = commune_index.setdefault(insee, len(commune_index))
        sites.append(f"[{int(doctor_id)},{lon:.5f},{lat:.5f},{c}]")
    names = []
    for insee in commune_index:
        commune = gazetteer.get(insee) if insee else None
        names.append(commune.name if commune else "")
    outline_feature = json.dumps(
        {"type": "Feature", "geometry": outline(territory), "properties": {"kind": "outline"}},
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
