"""The request page: everything the request says, audited reads, territory override, point."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Doctor, Request, RequestEvent, Status, Territory, User
from tests.conftest import AuthActions


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
