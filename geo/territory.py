"""Territory geometry: the union of a CPTS's commune contours, prepared for fast point checks."""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Any

import shapely
from shapely.geometry.base import BaseGeometry

from geo.communes import CONTOURS_GEOJSON, ReferenceDataError


@cache
def commune_contours() -> dict[str, BaseGeometry]:
    """Every shipped contour by INSEE code, parsed once per process (about 0.3 s, lazily)."""
    try:
        collection = json.loads(CONTOURS_GEOJSON.read_text(encoding="utf-8"))
        features = collection["features"]
        codes = [feature["properties"]["code"] for feature in features]
        geometries = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    except (OSError, ValueError, KeyError, TypeError, shapely.errors.GEOSException) as exc:
        raise ReferenceDataError(
            f"the contours file {CONTOURS_GEOJSON} is corrupt: {exc}"
        ) from None
    return dict(zip(codes, geometries, strict=True))


class TerritoryShape:
    """The area of a territory: answers 'is this point inside?' in microseconds."""

    def __init__(self, insee_codes: Iterable[str]) -> None:
        contours = commune_contours()
        codes = sorted(set(insee_codes))
        unknown = [code for code in codes if code not in contours]
        if unknown:
            raise ValueError(f"no contour for INSEE codes {', '.join(unknown)}")
        self.insee_codes = frozenset(codes)
        self.geometry: BaseGeometry = shapely.union_all([contours[c] for c in codes])
        shapely.prepare(self.geometry)

    def contains(self, lat: float, lon: float) -> bool:
        """True when the point lies inside or on the border of the territory."""
        return bool(self.geometry.covers(shapely.Point(lon, lat)))

    def outline_geojson(self) -> dict[str, Any]:
        """The outline as a GeoJSON geometry (for the map)."""
        result: dict[str, Any] = json.loads(shapely.to_geojson(self.geometry))
        return result


@lru_cache(maxsize=64)
def territory_shape(insee_codes: frozenset[str]) -> TerritoryShape:
    """A cached shape per distinct set of communes (territories rarely change)."""
    return TerritoryShape(insee_codes)
