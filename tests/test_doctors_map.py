"""The map: GeoJSON of the viewer's own CPTS only, coloured by availability; local Leaflet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from models import Accepting, Doctor, Territory, User, VolunteerStatus, utcnow
from orientation.blueprints.vendor import LEAFLET_DIST
from tests.conftest import AuthActions


@pytest.fixture
def mine(
    auth: AuthActions, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> Territory:
    territory = make_territory(name="CPTS Lys")
    auth.login(make_user(territory))
    return territory


def doctors_of(client: FlaskClient, query: str = "") -> dict[str, dict[str, Any]]:
    response = client.get(f"/espace/carte.json{query}")
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    collection = response.get_json()
    features = collection["features"]
    for feature in features[1:]:
        feature["properties"]["commune"] = collection["communes"][feature["properties"]["c"]]
    assert features[0]["properties"] == {"kind": "outline"}
    assert features[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    return {"Dr " + f["properties"]["n"]: f for f in features[1:]}


def test_the_map_shows_each_volunteer_coloured_by_availability(
    client: FlaskClient, mine: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    now = utcnow()
    make_doctor(mine, last_name="Libre", capacity_left=2)
    make_doctor(mine, last_name="Complet", capacity_left=0)
    make_doctor(mine, last_name="Pause", accepting=Accepting.PAUSED)
    make_doctor(mine, last_name="Ancien", confirmed_at=now - timedelta(days=200))
    make_doctor(mine, last_name="Annuaire", volunteer_status=VolunteerStatus.NOT_YET)
    make_doctor(mine, last_name="Parti", active=False)
    make_doctor(mine, last_name="Perdu", lat=None, lon=None, location_precision="none")

    doctors = doctors_of(client)
    assert {name: f["properties"]["s"] for name, f in doctors.items()} == {
        "Dr Alex Libre": "a",
        "Dr Alex Complet": "f",
        "Dr Alex Pause": "f",
        "Dr Alex Ancien": "s",
    }
    libre = doctors["Dr Alex Libre"]
    assert libre["properties"]["commune"] == "Armentières" and libre["properties"]["p"] == 2
    assert len(libre["geometry"]["coordinates"]) == 2


def test_another_cpts_doctors_never_reach_the_map(
    client: FlaskClient,
    mine: Territory,
    make_territory: Callable[..., Territory],
    make_doctor: Callable[..., Doctor],
) -> None:
    make_doctor(mine, last_name='Moi "<b>\\')
    make_doctor(make_territory(name="CPTS Autre"), last_name="Autre")
    assert list(doctors_of(client)) == ['Dr Alex Moi "<b>\\']  # escaped, valid JSON


def test_the_map_filters_by_patient_type_and_home_visits(
    client: FlaskClient, mine: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    make_doctor(mine, last_name="Tous", home_visits=True, home_visit_radius_km=5.0)
    make_doctor(mine, last_name="PasEnfants", accepts_under_6=False)
    assert set(doctors_of(client, "?moins6=1")) == {"Dr Alex Tous"}
    assert set(doctors_of(client, "?visites=1")) == {"Dr Alex Tous"}
    assert doctors_of(client, "?visites=1")["Dr Alex Tous"]["properties"]["v"] == 5.0
    assert doctors_of(client)["Dr Alex PasEnfants"]["properties"]["u"] == 1


def test_the_map_page_needs_a_login_and_loads_leaflet_from_this_server(
    client: FlaskClient, auth: AuthActions, mine: Territory
) -> None:
    page = client.get("/espace/carte").get_data(as_text=True)
    assert 'src="/vendor/leaflet/leaflet.js"' in page
    assert 'data-geojson-url="/espace/carte.json"' in page
    assert "<script>" not in page and "unpkg" not in page
    auth.logout()
    assert client.get("/espace/carte.json").status_code == 302


@pytest.mark.skipif(not LEAFLET_DIST.is_dir(), reason="run `npm ci` to install Leaflet")
def test_leaflet_is_served_from_the_npm_package_and_nothing_else(client: FlaskClient) -> None:
    with client.get("/vendor/leaflet/leaflet.js") as js:
        assert js.status_code == 200 and b"Leaflet" in js.data[:400]
    with client.get("/vendor/leaflet/images/marker-icon.png") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/png"
    assert client.get("/vendor/leaflet/../package.json").status_code == 404
    assert client.get("/vendor/leaflet/%2e%2e/package.json").status_code == 404
