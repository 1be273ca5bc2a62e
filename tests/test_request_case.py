"""The request page: everything the request says, audited reads, territory override, point."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Doctor, Request, RequestEvent, Status, Territory, User
from tests.conftest import PASSWORD, AuthActions


def test_request_page_shows_the_answers_the_ranking_and_is_audited(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(
        territory,
        persons=[("Odette", "Lemaire", date(1948, 2, 3))],
        lat=50.688,
        lon=2.88,
        comment="Sort peu de chez elle",
    )
    near = make_doctor(territory, last_name="Proche", lat=50.689, lon=2.881)
    far = make_doctor(territory, last_name="Lointain", lat=51.0, lon=2.3)
    user = make_user(territory)
    auth.login(user)
    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    assert "Odette Lemaire" in page and "Sort peu de chez elle" in page
    assert 'id="request-map"' in page and 'data-patient-lat="50.688"' in page
    assert "Dr Alex Proche" in page and "0,1 km" in page
    assert "Médecins écartés et pourquoi (1)" in page and "trop loin" in page
    assert "Le domicile est dans le territoire de la CPTS." in page
    assert near.id != far.id
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "request.read"))
    assert entry is not None and entry.object_id == str(request.id) and entry.user_id == user.id


def test_another_cpts_request_is_a_404_and_the_attempt_is_audited(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    mine, other = make_territory(), make_territory()
    theirs = make_request(other, persons=[("Secret", "Voisin", None)])
    auth.login(make_user(mine))
    response = client.get(f"/espace/demandes/{theirs.id}")
    assert response.status_code == 404 and "Voisin" not in response.get_data(as_text=True)
    assert (
        client.post(f"/espace/demandes/{theirs.id}/cloture", data={"reason": "x" * 9}).status_code
        == 404
    )
    session.refresh(theirs)
    assert theirs.status == Status.ELIGIBLE
    probes = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "request.not_found")
    ).all()
    assert [p.object_id for p in probes] == [str(theirs.id), str(theirs.id)]


def test_territory_override_needs_a_reason_and_records_it(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    territory = make_territory()
    request = make_request(territory, Status.OUT_OF_TERRITORY)
    auth.login(make_user(territory))
    refused = client.post(f"/espace/demandes/{request.id}/territoire", data={"reason": " "})
    assert refused.status_code == 422
    assert "Indiquez la raison de la dérogation" in refused.get_data(as_text=True)
    session.refresh(request)
    assert request.status == Status.OUT_OF_TERRITORY
    reason = "Habite à 200 m de la limite, suivie par la pharmacie du centre"
    accepted = client.post(f"/espace/demandes/{request.id}/territoire", data={"reason": reason})
    assert accepted.status_code == 302
    session.refresh(request)
    assert request.status == Status.ELIGIBLE
    event = session.scalar(select(RequestEvent).where(RequestEvent.kind == "territory_override"))
    assert event is not None and event.note == reason and event.from_status == "out_of_territory"


def test_correcting_the_point_keeps_the_previous_value_in_the_event(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    territory = make_territory()
    request = make_request(territory, lat=50.1, lon=3.1)
    auth.login(make_user(territory))
    bad = client.post(f"/espace/demandes/{request.id}/position", data={"lat": "abc", "lon": "2,9"})
    page = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "La latitude doit être un nombre" in page
    assert 'value="2,9"' in page  # what was typed is kept
    ok = client.post(
        f"/espace/demandes/{request.id}/position", data={"lat": "50,69", "lon": "2.88"}
    )
    assert ok.status_code == 302
    session.refresh(request)
    assert (request.lat, request.lon, request.location_precision.value) == (50.69, 2.88, "manual")
    event = session.scalar(select(RequestEvent).where(RequestEvent.kind == "point_corrected"))
    assert event is not None and "avant 50.100000, 3.100000" in event.note
    assert "après 50.690000, 2.880000" in event.note


def test_the_dragged_map_marker_corrects_the_point_through_the_same_service_and_event(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    territory = make_territory()
    request = make_request(territory, lat=50.1, lon=3.1)
    auth.login(make_user(territory))
    url = f"/espace/demandes/{request.id}/position"
    bad = client.post(url, json={"lat": 60.0, "lon": 2.9})
    assert bad.status_code == 422 and bad.json == {
        "error": "La latitude doit être un nombre entre 41 et 51,6 (France).",
        "field": "lat",
    }
    assert client.post(url, json={"lat": True, "lon": 2.9}).status_code == 422
    assert client.post(url, json=["50", "2"]).status_code == 422
    session.refresh(request)
    assert (request.lat, request.lon) == (50.1, 3.1)  # nothing saved half-way
    ok = client.post(url, json={"lat": 50.6891234, "lon": 2.8812341})
    assert ok.status_code == 200
    assert ok.json["lat"] == 50.689123 and ok.json["lon"] == 2.881234  # type: ignore[index]
    assert "avant 50.100000, 3.100000" in ok.json["note"]  # type: ignore[index]
    session.refresh(request)
    assert (request.lat, request.lon, request.location_precision.value) == (
        50.689123,
        2.881234,
        "manual",
    )
    events = session.scalars(select(RequestEvent).where(RequestEvent.kind == "point_corrected"))
    assert [e.note for e in events] == [
        "Point corrigé : avant 50.100000, 3.100000 (non localisé) ; après 50.689123, 2.881234."
    ]
    audited = session.scalar(
        select(AuditEntry).where(AuditEntry.action == "request.point_corrected")
    )
    assert audited is not None and audited.object_id == str(request.id)


def test_the_map_on_the_request_page_marks_the_ranked_doctors_and_the_draggable_point(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(territory, lat=50.688, lon=2.88)
    near = make_doctor(territory, last_name="Proche", lat=50.689, lon=2.881)
    make_doctor(territory, last_name="Lointain", lat=51.0, lon=2.3)
    auth.login(make_user(territory))
    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    assert f'data-highlight-ids="{near.id}"' in page
    assert f'data-patient-move-url="/espace/demandes/{request.id}/position"' in page
    assert 'data-geojson-url="/espace/carte.json"' in page and "js/map.js" in page


def test_the_json_point_correction_needs_the_csrf_header(
    settings: Any,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    from orientation import create_app

    territory = make_territory()
    request = make_request(territory, lat=50.1, lon=3.1)
    user = make_user(territory)
    app = create_app(settings.with_overrides(extra={"WTF_CSRF_ENABLED": True}))
    client = app.test_client()
    login_page = client.get("/connexion").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login_page)
    assert token is not None
    client.post(
        "/connexion",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    header = re.search(r'data-csrf="([^"]+)"', page)
    assert header is not None
    url = f"/espace/demandes/{request.id}/position"
    refused = client.post(url, json={"lat": 50.7, "lon": 2.9})
    accepted = client.post(
        url, json={"lat": 50.7, "lon": 2.9}, headers={"X-CSRFToken": header.group(1)}
    )
    app.extensions["orientation.engine"].dispose()
    assert refused.status_code == 400 and accepted.status_code == 200
    session.refresh(request)
    assert (request.lat, request.lon) == (50.7, 2.9)


def test_the_request_page_shows_the_phone_as_people_read_it(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    territory = make_territory()
    request = make_request(territory, phone="+33612345678", preferred_channel="sms")
    auth.login(make_user(territory))
    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    assert "06 12 34 56 78" in page
    assert "<td>SMS</td>" in page
