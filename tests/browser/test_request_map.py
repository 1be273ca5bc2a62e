"""The request page's map: the territory, the volunteer doctors with the ranked ones standing
out, and the household's point that a coordinator drags to correct (CSRF on, as in production)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Doctor, Request, RequestEvent, Territory, User
from orientation import Settings
from tests.conftest import PASSWORD


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The app under test checks CSRF tokens: map.js must send its X-CSRFToken header."""
    return settings.with_overrides(extra={"WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": False})


def test_dragging_the_patient_marker_moves_the_point_and_the_timeline_keeps_the_old_one(
    live_server: str,
    desktop_page,  # type: ignore[no-untyped-def]
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory(name="CPTS Lys-Armentières")
    request = make_request(territory, lat=50.688, lon=2.88)
    ranked = make_doctor(territory, last_name="Proche", lat=50.689, lon=2.881)
    make_doctor(territory, last_name="Lointain", lat=51.0, lon=2.3)  # too far: not ranked
    user = make_user(territory)
    page = desktop_page
    # OpenStreetMap tiles are the only outside address: refuse them, the map draws without.
    page.route(re.compile(r"^https://tile\.openstreetmap\.org/"), lambda route: route.abort())
    page.goto(live_server + "/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/espace/")
    page.goto(f"{live_server}/espace/demandes/{request.id}")

    page.wait_for_selector("#request-map[data-doctor-count]")
    map_box = page.locator("#request-map")
    assert map_box.get_attribute("data-doctor-count") == "2"
    assert map_box.get_attribute("data-highlighted-count") == "1"
    assert map_box.get_attribute("data-highlight-ids") == str(ranked.id)
    assert page.locator("#request-map path.leaflet-interactive, #request-map canvas").count() >= 1

    marker = page.locator("#request-map .leaflet-marker-icon")
    marker.scroll_into_view_if_needed()
    box = marker.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 50, y + 30, steps=8)
    with page.expect_navigation():  # the page reloads once the point is recorded
        page.mouse.up()

    timeline = page.locator("ol.timeline")
    timeline.get_by_text("Point du domicile corrigé").wait_for()
    note = timeline.locator(".note", has_text="Point corrigé").inner_text()
    assert note.startswith("Point corrigé : avant 50.688000, 2.880000 (non localisé) ; après ")
    session.expire_all()
    moved = session.get(Request, request.id)
    assert moved is not None and moved.lat is not None and moved.lon is not None
    assert moved.lat < 50.688 and moved.lon > 2.88  # dragged down and to the right
    assert f"après {moved.lat:.6f}, {moved.lon:.6f}." in note
    events = session.scalars(select(RequestEvent).where(RequestEvent.kind == "point_corrected"))
    assert len(events.all()) == 1


def test_a_doctor_named_with_html_shows_literally_in_the_map_tooltip(
    live_server: str,
    desktop_page,  # type: ignore[no-untyped-def]
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory(name="CPTS Lys-Armentières")
    request = make_request(territory, lat=50.688, lon=2.88)
    name = '<b>INJ</b><img src="x" id="injected">'
    make_doctor(territory, last_name=name, lat=50.689, lon=2.881)
    user = make_user(territory)
    page = desktop_page
    page.route(re.compile(r"^https://tile\.openstreetmap\.org/"), lambda route: route.abort())
    page.goto(live_server + "/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/espace/")
    page.goto(f"{live_server}/espace/demandes/{request.id}")

    page.wait_for_selector("#request-map[data-highlighted-count='1']")
    # The tooltip opens on hover: opened here on the ranked marker.
    page.evaluate(
        "() => window.OrientationMap.instances[0].map.eachLayer("
        "l => l.getTooltip && l.getTooltip() && l.openTooltip())"
    )
    tooltip = page.locator("#request-map .leaflet-tooltip")
    tooltip.wait_for()
    assert name in tooltip.inner_text()
    assert page.locator("#request-map .leaflet-tooltip b, #injected").count() == 0
