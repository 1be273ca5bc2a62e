"""The coordinator's map as GeoJSON: the territory outline and each volunteer doctor.

Sized for a region (6,000 doctors under 1 MB): coordinates rounded to 5 decimals (about a
metre), short property keys, and one query of plain columns rather than ORM objects.
Property keys of a doctor feature: id, n (name), s (status: a available, f full, s stale),
p (places left), c (commune), v (home visits radius km, or absent), u/e/d (does NOT take
under-6 / elderly-dependent / ALD follow-up: present only when 1), m (step-free access).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer
from geo.territory import territory_shape
from models import Accepting, Doctor, LocationPrecision, Territory, VolunteerStatus
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


def doctor_features(
    session: Session, gazetteer: Gazetteer, territory: Territory, now: datetime, f: MapFilters
) -> list[dict[str, Any]]:
    """One GeoJSON point per placed, active volunteer doctor that passes the filters."""
    cutoff = availability_cutoff(territory, now)
    today = now.date()
    d = Doctor
    query = select(
        d.id,
        d.first_name,
        d.last_name,
        d.lat,
        d.lon,
        d.accepting,
        d.paused_until,
        d.capacity_left,
        d.confirmed_at,
        d.commune_insee,
        d.accepts_under_6,
        d.accepts_elderly_dependent,
        d.accepts_ald_followup,
        d.home_visits,
        d.home_visit_radius_km,
        d.step_free_access,
    ).where(
        d.territory_id == territory.id,
        d.active.is_(True),
        d.volunteer_status == VolunteerStatus.VOLUNTEER,
        d.location_precision != LocationPrecision.NONE,
        d.lat.is_not(None),
    )
    if f.under_6:
        query = query.where(d.accepts_under_6.is_(True))
    if f.elderly_dependent:
        query = query.where(d.accepts_elderly_dependent.is_(True))
    if f.ald_followup:
        query = query.where(d.accepts_ald_followup.is_(True))
    if f.home_visits:
        query = query.where(d.home_visits.is_(True))
    features = []
    names: dict[str | None, str] = {}
    for row in session.execute(query.order_by(d.id)):
        if row.confirmed_at is None or row.confirmed_at < cutoff:
            status = "s"
        else:
            accepting = row.accepting == Accepting.YES or (
                row.accepting == Accepting.PAUSED
                and row.paused_until is not None
                and row.paused_until <= today
            )
            status = "a" if accepting and row.capacity_left > 0 else "f"
        if row.commune_insee not in names:
            commune = gazetteer.get(row.commune_insee) if row.commune_insee else None
            names[row.commune_insee] = commune.name if commune else ""
        props: dict[str, Any] = {
            "id": row.id,
            "n": f"Dr {row.first_name} {row.last_name}",
            "s": status,
            "p": row.capacity_left,
            "c": names[row.commune_insee],
        }
        if row.home_visits:
            props["v"] = row.home_visit_radius_km
        if not row.accepts_under_6:
            props["u"] = 1
        if not row.accepts_elderly_dependent:
            props["e"] = 1
        if not row.accepts_ald_followup:
            props["d"] = 1
        if row.step_free_access:
            props["m"] = 1
        features.append(
            {
                "type": "Feature",
                "geometry": {
                    "type": "Point",
                    "coordinates": [round(row.lon, 5), round(row.lat, 5)],
                },
                "properties": props,
            }
        )
    return features


def map_geojson(
    session: Session, gazetteer: Gazetteer, territory: Territory, now: datetime, f: MapFilters
) -> dict[str, Any]:
    """The FeatureCollection the map draws: the outline first, then the doctors."""
    return {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": outline(territory), "properties": {"kind": "outline"}},
            *doctor_features(session, gazetteer, territory, now, f),
        ],
    }
