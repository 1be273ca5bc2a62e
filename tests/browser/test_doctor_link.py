"""A doctor updates availability from the link on a phone; the coordinator sees it on the map."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import Accepting, Doctor, DoctorSite, LocationPrecision, Territory, User, utcnow
from orientation.services.doctor_refresh import availability_link
from tests.conftest import PASSWORD

SECRET = "test-secret-" + "x" * 40


def test_a_doctor_confirms_on_a_phone_and_the_coordinator_sees_it_on_the_map(
    live_server: str,
    phone_page,  # type: ignore[no-untyped-def]
    desktop_page,  # type: ignore[no-untyped-def]
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory(name="CPTS Lys")
    coordinator = make_user(territory)
    doctor = make_doctor(
        territory,
        first_name="Marie",
        last_name="Delcourt",
        accepting=Accepting.NO,
        capacity_left=0,
        confirmed_at=utcnow() - timedelta(days=170),
    )
    link = availability_link(doctor, live_server, SECRET)

    phone = phone_page
    phone.goto(link)
    assert phone.get_by_role("heading", level=1).inner_text() == (
        "Vos disponibilités pour de nouveaux patients"
    )
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    phone.get_by_label("Oui, j'accepte de nouveaux patients").check()
    phone.get_by_label("Combien de nouveaux patients d'ici six mois ?").fill("4")
    phone.get_by_label("Je fais des visites à domicile").check()
    phone.get_by_label("Jusqu'à combien de kilomètres ?").fill("5")
    phone.get_by_role("button", name="Enregistrer mes disponibilités").click()
    assert phone.get_by_role("heading", level=1).inner_text() == "Merci, c'est enregistré"
    expect(phone.get_by_text("Vous acceptez de nouveaux patients (4")).to_be_visible()

    page = desktop_page
    page.goto(live_server + "/connexion")
    page.get_by_label("Adresse e-mail").fill(coordinator.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/espace/")
    page.get_by_role("link", name="Carte").click()
    page.wait_for_selector("#map[data-doctor-count='1']")
    # Markers are drawn on a canvas: click where Leaflet put the doctor's point.
    x, y = page.evaluate(
        """([lat, lon]) => {
            const map = window.OrientationMap.instances[0].map;
            const p = map.latLngToContainerPoint([lat, lon]);
            const box = map.getContainer().getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""",
        [doctor.lat, doctor.lon],
    )
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "Dr Marie Delcourt" in text
    assert "Accepte de nouveaux patients" in text
    assert "4 place(s) annoncée(s)" in text
    assert "Visites à domicile jusqu'à 5 km" in text
    # The territory outline is drawn from our own data even without tiles.
    assert page.locator("path.leaflet-interactive, .leaflet-overlay-pane svg path, canvas").count()


def test_a_coordinator_places_an_unplaced_doctor_by_clicking_the_map(
    live_server: str,
    desktop_page,  # type: ignore[no-untyped-def]
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory(name="CPTS Lys")
    coordinator = make_user(territory)
    doctor = make_doctor(territory, lat=None, lon=None, location_precision="none")
    page = desktop_page
    page.goto(live_server + "/connexion")
    page.get_by_label("Adresse e-mail").fill(coordinator.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/espace/")
    page.goto(f"{live_server}/espace/medecins/{doctor.id}")
    expect(page.get_by_text("Non placé sur la carte : exclu du classement.")).to_be_visible()
    page.wait_for_selector("#place-map[data-doctor-count]")
    page.locator("#place-map").click()  # the middle of the territory
    page.get_by_text("Cabinet placé ici").wait_for()
    session.expire_all()
    placed = session.get(Doctor, doctor.id)
    assert placed is not None and placed.location_precision is LocationPrecision.MANUAL
    assert placed.lat is not None and 50.5 < placed.lat < 50.8


def test_map_js_posts_the_dragged_patient_point_with_the_csrf_token(
    live_server: str,
    desktop_page,  # type: ignore[no-untyped-def]
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    """The contract other pages rely on: data-patient-* and data-patient-move-url."""
    coordinator = make_user(make_territory(name="CPTS Lys"))
    page = desktop_page
    page.goto(live_server + "/connexion")
    page.get_by_label("Adresse e-mail").fill(coordinator.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/espace/")
    page.goto(live_server + "/espace/carte")
    posted: list[tuple[str, str, str]] = []

    def capture(route, request) -> None:  # type: ignore[no-untyped-def]
        posted.append((request.method, request.headers.get("x-csrftoken", ""), request.post_data))
        route.fulfill(status=200, content_type="application/json", body="{}")

    page.route("**/patient-position", capture)
    page.evaluate(
        """() => {
            const box = document.createElement("div");
            box.id = "patient-map";
            box.className = "map";
            box.dataset.patientLat = "50.6881";
            box.dataset.patientLon = "2.8812";
            box.dataset.patientMoveUrl = "/patient-position";
            box.dataset.csrf = "token-123";
            const status = document.createElement("p");
            status.id = "patient-map-status";
            document.querySelector("main").append(box, status);
            window.OrientationMap.init(box).map.setView([50.6881, 2.8812], 14);
        }"""
    )
    marker = page.locator("#patient-map .leaflet-marker-icon")
    marker.scroll_into_view_if_needed()
    box = marker.bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 40, steps=8)
    page.mouse.up()
    page.get_by_text("Position du patient enregistrée.").wait_for(state="attached")
    assert len(posted) == 1
    method, token, body = posted[0]
    assert (method, token) == ("POST", "token-123")
    assert '"lat":50.68' in body and '"lon":2.88' in body


def test_a_doctors_second_site_shows_on_the_coordinators_map_on_a_phone(
    live_server: str,
    phone_page,  # type: ignore[no-untyped-def]
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory(name="CPTS Lys")
    coordinator = make_user(territory)
    doctor = make_doctor(territory, insee="59317", first_name="Karim", last_name="Bensaid")
    armentieres = gazetteer().by_insee["59017"]
    session.add(
        DoctorSite(
            territory_id=territory.id,
            doctor_id=doctor.id,
            address="3 place du Général de Gaulle",
            postal_code="59280",
            commune_insee="59017",
            lat=armentieres.lat,
            lon=armentieres.lon,
            location_precision=LocationPrecision.COMMUNE,
        )
    )
    session.commit()
    page = phone_page
    page.goto(live_server + "/connexion")
    page.get_by_label("Adresse e-mail").fill(coordinator.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(live_server + "/espace/")
    page.goto(live_server + "/espace/carte")
    # One doctor, two points: the main practice in Houplines and the site in Armentières.
    page.wait_for_selector("#map[data-doctor-count='2']")
    page.locator("#map").scroll_into_view_if_needed()
    x, y = page.evaluate(
        """([lat, lon]) => {
            const map = window.OrientationMap.instances[0].map;
            const p = map.latLngToContainerPoint([lat, lon]);
            const box = map.getContainer().getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""",
        [armentieres.lat, armentieres.lon],
    )
    page.mouse.click(x, y)
    popup = page.locator(".leaflet-popup-content")
    popup.wait_for()
    text = popup.inner_text()
    assert "Dr Karim Bensaid" in text
    assert "Site secondaire : Armentières" in text


AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.skipif(not AXE.exists(), reason="run `npm ci` to install axe-core")
def test_the_doctors_form_has_no_serious_accessibility_violation(
    live_server: str,
    browser,  # type: ignore[no-untyped-def]
    make_territory: Callable[..., Territory],
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(make_territory(name="CPTS Lys"))
    # axe is injected as a script: this context alone bypasses the CSP to allow it.
    context = browser.new_context(
        viewport={"width": 360, "height": 740}, locale="fr-FR", bypass_csp=True
    )
    page = context.new_page()
    try:
        page.goto(availability_link(doctor, live_server, SECRET))
        page.add_script_tag(path=str(AXE))
        result = page.evaluate("async () => await axe.run(document)")
        serious = [
            (v["id"], v["help"], [n["html"] for n in v["nodes"]])
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert serious == []
        page.get_by_label("Pas pour le moment, jusqu'à une date").check()
        page.get_by_role("button", name="Enregistrer mes disponibilités").click()
        error = page.get_by_text("Indiquez jusqu'à quelle date (JJ/MM/AAAA).")
        expect(error).to_be_visible()
        described = page.get_by_label("En pause jusqu'au").get_attribute("aria-describedby")
        assert described is not None and "paused_until-error" in described
    finally:
        context.close()
