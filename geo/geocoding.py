"""Geocoders: a postal code, a commune and a street to a point, as precise as configured.

- `OfflineGeocoder` (default): the commune gazetteer shipped with the package; the point is the
  commune's (precision COMMUNE). Nothing leaves the server.
- `AddressFileGeocoder`: an imported BAN address extract (CSV, the `adresses-XX.csv` layout of
  adresse.data.gouv.fr) gives address-level points without leaving the server.
- `BanGeocoder`: the Base Adresse Nationale through geopy's `BANFrance`; the address leaves the
  server, so it is opt-in (ORIENTATION_GEOCODER=ban). It falls back to the commune point.

Geocoders never refuse a request: when the address is not found the commune point is used.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from geo.communes import CommuneRecord, Gazetteer, gazetteer, normalise_name

# The values of models.LocationPrecision (geo/ stays free of the database layer).
COMMUNE = "commune"
ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class GeocodedPoint:
    insee: str
    lat: float
    lon: float
    precision: str  # COMMUNE or ADDRESS


class Geocoder(Protocol):
    def locate(self, commune: CommuneRecord, street: str) -> GeocodedPoint:
        """The best point for a street in a commune already identified."""


class OfflineGeocoder:
    """The commune's point from the shipped gazetteer."""

    def locate(self, commune: CommuneRecord, street: str) -> GeocodedPoint:
        return GeocodedPoint(commune.insee, commune.lat, commune.lon, COMMUNE)


def normalise_street(street: str) -> str:
    """'12, Rue  de la Gare' and '12 rue de la gare' give the same key."""
    return normalise_name(street)


class AddressFileGeocoder:
    """Address points from a BAN CSV extract loaded in memory (a département is ~1 M rows)."""

    def __init__(self, path: Path) -> None:
        self._points: dict[tuple[str, str], tuple[float, float]] = {}
        with path.open(encoding="utf-8", newline="") as handle:
            sample = handle.readline()
            handle.seek(0)
            delimiter = ";" if sample.count(";") > sample.count(",") else ","
            for row in csv.DictReader(handle, delimiter=delimiter):
                number = (row.get("numero") or "").strip()
                suffix = (row.get("rep") or "").strip()
                street = f"{number}{suffix} {row.get('nom_voie', '')}".strip()
                try:
                    point = (float(row["lat"]), float(row["lon"]))
                except (KeyError, ValueError):
                    continue
                self._points[(row.get("code_insee", ""), normalise_street(street))] = point

    def __len__(self) -> int:
        return len(self._points)

    def locate(self, commune: CommuneRecord, street: str) -> GeocodedPoint:
        point = self._points.get((commune.insee, normalise_street(street)))
        if point is None:
            return OfflineGeocoder().locate(commune, street)
        return GeocodedPoint(commune.insee, point[0], point[1], ADDRESS)


class BanGeocoder:
    """The national address base through geopy (network; opt-in)."""

    def __init__(
        self, timeout: float = 3.0, domain: str = "api-adresse.data.gouv.fr", scheme: str = "https"
    ) -> None:
        from geopy.geocoders import BANFrance

        self._ban = BANFrance(timeout=timeout, domain=domain, scheme=scheme)

    def locate(self, commune: CommuneRecord, street: str) -> GeocodedPoint:
        from geopy.exc import GeopyError

        if street.strip():
            try:
                found = self._ban.geocode(f"{street}, {commune.postal_codes[0]} {commune.name}")
            except GeopyError:
                found = None  # the service is down: the commune point keeps the request going
            if found is not None:
                properties = found.raw.get("properties", {})
                if properties.get("citycode") == commune.insee and properties.get("type") in (
                    "housenumber",
                    "street",
                ):
                    return GeocodedPoint(commune.insee, found.latitude, found.longitude, ADDRESS)
        return OfflineGeocoder().locate(commune, street)


def make_geocoder(kind: str, address_file: Path | None = None) -> Geocoder:
    """The geocoder the settings ask for (ORIENTATION_GEOCODER, ORIENTATION_BAN_ADDRESS_FILE)."""
    if kind == "ban":
        return BanGeocoder()
    if address_file is not None:
        return AddressFileGeocoder(address_file)
    return OfflineGeocoder()


def find_commune(
    postal_code: str, name: str, insee: str = "", reference: Gazetteer | None = None
) -> CommuneRecord | None:
    """The commune of that postal code chosen by INSEE code (the select) or typed by name."""
    reference = reference or gazetteer()
    if insee:
        commune = reference.get(insee)
        if commune is not None and postal_code in commune.postal_codes:
            return commune
    return reference.find(postal_code, name)
