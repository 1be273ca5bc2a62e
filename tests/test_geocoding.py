"""Geocoding: the commune point offline, address points from an imported BAN extract."""

from __future__ import annotations

from pathlib import Path

from geo.communes import gazetteer
from geo.geocoding import (
    ADDRESS,
    COMMUNE,
    AddressFileGeocoder,
    OfflineGeocoder,
    find_commune,
    make_geocoder,
)
from geo.territory import territory_shape
from orientation.services.intake import in_territory

ARMENTIERES = gazetteer().by_insee["59017"]


def test_the_offline_geocoder_gives_the_commune_point() -> None:
    point = OfflineGeocoder().locate(ARMENTIERES, "12 rue de la Gare")
    assert (point.insee, point.lat, point.lon, point.precision) == (
        "59017", ARMENTIERES.lat, ARMENTIERES.lon, COMMUNE,
    )  # fmt: skip


def _extract(tmp_path: Path) -> Path:
    path = tmp_path / "adresses-59.csv"
    path.write_text(
        "id;id_fantoir;numero;rep;nom_voie;code_postal;code_insee;nom_commune;x;y;lon;lat\n"
        "59017_1;;12;;Rue de la Gare;59280;59017;Armentières;0;0;2.8850;50.6880\n"
        "59017_2;;3;bis;Place du Général de Gaulle;59280;59017;Armentières;0;0;2.8810;50.6870\n"
        "59017_3;;x;;Rue cassée;59280;59017;Armentières;0;0;;\n",
        encoding="utf-8",
    )
    return path


def test_an_imported_ban_extract_gives_address_points(tmp_path: Path) -> None:
    geocoder = AddressFileGeocoder(_extract(tmp_path))
    assert len(geocoder) == 2  # the row without coordinates is skipped
    point = geocoder.locate(ARMENTIERES, "12, rue de la gare")
    assert (point.lat, point.lon, point.precision) == (50.6880, 2.8850, ADDRESS)
    assert geocoder.locate(ARMENTIERES, "3bis place du general de gaulle").precision == ADDRESS


def test_an_address_missing_from_the_extract_falls_back_to_the_commune(tmp_path: Path) -> None:
    point = AddressFileGeocoder(_extract(tmp_path)).locate(ARMENTIERES, "99 rue Inconnue")
    assert point.precision == COMMUNE and point.lat == ARMENTIERES.lat


def test_settings_choose_the_geocoder(tmp_path: Path) -> None:
    assert isinstance(make_geocoder("offline"), OfflineGeocoder)
    assert isinstance(make_geocoder("offline", _extract(tmp_path)), AddressFileGeocoder)


def test_the_select_picks_a_commune_only_of_its_postal_code() -> None:
    assert find_commune("59280", "", "59017") == ARMENTIERES
    assert find_commune("59280", "", "62765") is None  # Saint-Omer is not in 59280


def test_an_address_point_is_checked_inside_the_outline_and_a_commune_by_membership() -> None:
    codes = ["59017", "59431", "59143"]
    from models import Territory, TerritoryCommune

    territory = Territory(name="T", slug="t", communes=[TerritoryCommune(insee=c) for c in codes])
    shape = territory_shape(frozenset(codes))
    assert shape.contains(ARMENTIERES.lat, ARMENTIERES.lon)
    assert in_territory(territory, "59017", 0.0, 0.0, COMMUNE)  # membership, point unused
    assert in_territory(territory, "59017", ARMENTIERES.lat, ARMENTIERES.lon, ADDRESS)
    lille = gazetteer().by_insee["59350"]
    assert not in_territory(territory, "59017", lille.lat, lille.lon, ADDRESS)


def test_the_ban_geocoder_speaks_the_api_adresse_protocol_and_falls_back(
    tmp_path: Path,
) -> None:
    """geopy's BANFrance against a local server answering like api-adresse.data.gouv.fr."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from geo.geocoding import BanGeocoder

    asked: list[str] = []

    class Ban(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server API
            asked.append(self.path)
            found = "gare" in self.path.lower()
            feature = {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [2.885, 50.688]},
                "properties": {"label": "12 Rue de la Gare 59280 Armentières",
                               "citycode": "59017", "type": "housenumber", "score": 0.9},
            }  # fmt: skip
            body = json.dumps({"type": "FeatureCollection", "features": [feature] if found else []})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Ban)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        geocoder = BanGeocoder(domain=f"127.0.0.1:{server.server_port}", scheme="http")
        point = geocoder.locate(ARMENTIERES, "12 rue de la Gare")
        assert (point.lat, point.lon, point.precision) == (50.688, 2.885, ADDRESS)
        assert "59280" in asked[0] and "Armenti" in asked[0]
        assert geocoder.locate(ARMENTIERES, "nowhere").precision == COMMUNE
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    down = BanGeocoder(domain="127.0.0.1:9", scheme="http", timeout=0.5)  # nothing listens
    assert down.locate(ARMENTIERES, "12 rue de la Gare").precision == COMMUNE
