"""The doctor registry: RPPS and coordinate checks, coordinator screens, ranking input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from geo.ranking import DoctorIndex, PatientNeeds
from models import (
    Accepting,
    Doctor,
    DoctorEvent,
    LocationPrecision,
    Territory,
    User,
    VolunteerStatus,
    utcnow,
)
from orientation.services.doctors import (
    DoctorError,
    check_coordinates,
    check_rpps,
    doctor_points,
    locate,
    rpps_with_key,
)
from tests.conftest import AuthActions

VALID_RPPS = rpps_with_key("1000012345")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "Indiquez le numéro RPPS"),
        ("1000012345A", "ne contient que des chiffres"),
        ("100001234", "compte 11 chiffres (ici 9)"),
        ("123456789012", "compte 11 chiffres (ici 12)"),
    ],
)
def test_a_malformed_rpps_is_refused_with_a_french_reason(typed: str, message: str) -> None:
    with pytest.raises(DoctorError) as refused:
        check_rpps(typed)
    assert message in refused.value.message
    assert refused.value.field == "rpps"


def test_an_rpps_with_a_wrong_key_digit_is_refused() -> None:
    wrong = VALID_RPPS[:-1] + str((int(VALID_RPPS[-1]) + 1) % 10)
    with pytest.raises(DoctorError, match="clé de contrôle"):
        check_rpps(wrong)


def test_a_valid_rpps_is_accepted_even_typed_with_spaces() -> None:
    spaced = f"{VALID_RPPS[:3]} {VALID_RPPS[3:7]} {VALID_RPPS[7:]}"
    assert check_rpps(spaced) == VALID_RPPS


@pytest.mark.parametrize(("lat", "lon"), [(2.88, 50.69), (51.5, -0.12), (0.0, 0.0), (40.4, -3.7)])
def test_coordinates_outside_france_are_refused(lat: float, lon: float) -> None:
    with pytest.raises(DoctorError, match="hors de France"):
        check_coordinates(lat, lon)


def test_coordinates_in_france_and_overseas_are_accepted() -> None:
    assert check_coordinates(50.688123456, 2.8812) == (50.688123, 2.8812)
    assert check_coordinates(-21.1, 55.5) == (-21.1, 55.5)  # La Réunion


def test_a_practice_is_placed_at_its_commune_point_or_flagged_when_unknown() -> None:
    armentieres = gazetteer().get("59017")
    assert armentieres is not None
    placed = locate(gazetteer(), "59280", "Armentieres")
    assert (placed.insee, placed.lat, placed.precision) == (
        "59017",
        armentieres.lat,
        LocationPrecision.COMMUNE,
    )
    lost = locate(gazetteer(), "99999", "Nulle-Part")
    assert lost.precision is LocationPrecision.NONE and lost.lat is None


def test_stale_paused_and_unplaced_doctors_drop_out_of_ranking(
    session: Session,
    make_territory: Callable[..., Territory],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    now = utcnow()
    fresh = make_doctor(territory)
    stale = make_doctor(territory, confirmed_at=now - timedelta(days=200))
    paused = make_doctor(
        territory, accepting=Accepting.PAUSED, paused_until=now.date() + timedelta(days=30)
    )
    pause_over = make_doctor(
        territory, accepting=Accepting.PAUSED, paused_until=now.date() - timedelta(days=1)
    )
    unplaced = make_doctor(territory, lat=None, lon=None, location_precision="none")
    make_doctor(territory, volunteer_status=VolunteerStatus.NOT_YET)
    make_doctor(territory, active=False)

    points = {p.id: p for p in doctor_points(session, territory, now)}
    assert points[stale.id].stale and not points[fresh.id].stale
    assert not points[paused.id].accepting and points[pause_over.id].accepting
    assert points[unplaced.id].lat is None

    armentieres = gazetteer().get("59017")
    assert armentieres is not None
    needs = PatientNeeds(lat=armentieres.lat, lon=armentieres.lon)
    ranked = [c.doctor_id for c in DoctorIndex(list(points.values())).rank(needs, k=20)]
    assert ranked == [fresh.id, pause_over.id]


def _form(**overrides: str) -> dict[str, str]:
    data = {
        "rpps": VALID_RPPS,
        "last_name": "Delcourt",
        "first_name": "Marie",
        "practice_address": "12 rue de Lille",
        "postal_code": "59280",
        "commune": "Armentières",
        "phone": "03 20 00 00 01",
        "email": "marie.delcourt@example.org",
        "preferred_channel": "email",
        "volunteer_status": "volunteer",
        "accepting": "yes",
        "capacity_left": "4",
        "accepts_under_6": "y",
        "accepts_ald_followup": "y",
        "home_visits": "y",
        "home_visit_radius_km": "5",
    }
    data.update(overrides)
    return data


@pytest.fixture
def coordinator(
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> tuple[Territory, User]:
    territory = make_territory(name="CPTS Lys")
    user = make_user(territory)
    auth.login(user)
    return territory, user


def test_coordinator_adds_a_doctor_placed_at_the_commune_with_an_event(
    client: FlaskClient, session: Session, coordinator: tuple[Territory, User]
) -> None:
    response = client.post("/espace/medecins/nouveau", data=_form())
    assert response.status_code == 302
    doctor = session.scalars(select(Doctor)).one()
    assert (doctor.rpps, doctor.commune_insee, doctor.phone) == (
        VALID_RPPS,
        "59017",
        "+33320000001",
    )
    assert doctor.location_precision is LocationPrecision.COMMUNE
    assert doctor.confirmed_by.startswith("coordination")
    assert not doctor.accepts_elderly_dependent  # an unticked box
    event = session.scalars(select(DoctorEvent)).one()
    assert (event.source, event.action) == ("coordinator", "created")
    listing = client.get("/espace/medecins").get_data(as_text=True)
    assert "Dr Marie Delcourt" in listing


def test_a_bad_rpps_keeps_everything_else_typed_and_saves_nothing(
    client: FlaskClient, session: Session, coordinator: tuple[Territory, User]
) -> None:
    response = client.post("/espace/medecins/nouveau", data=_form(rpps="1234567890A"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Le numéro RPPS ne contient que des chiffres." in page
    assert 'aria-describedby="rpps-hint rpps-error"' in page
    assert 'value="Delcourt"' in page and 'value="12 rue de Lille"' in page
    assert session.scalars(select(Doctor)).first() is None


def test_a_wrong_rpps_key_is_said_in_the_same_round_as_the_other_errors(
    client: FlaskClient, session: Session, coordinator: tuple[Territory, User]
) -> None:
    wrong_key = VALID_RPPS[:-1] + str((int(VALID_RPPS[-1]) + 1) % 10)
    response = client.post(
        "/espace/medecins/nouveau", data=_form(rpps=wrong_key, last_name="", email="pas-un-mail")
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "clé de contrôle fausse" in page and "Indiquez le nom du médecin." in page
    assert session.scalars(select(Doctor)).first() is None


def test_a_duplicated_rpps_is_refused(
    client: FlaskClient,
    session: Session,
    coordinator: tuple[Territory, User],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory, _ = coordinator
    make_doctor(territory, rpps=VALID_RPPS, last_name="Premier")
    response = client.post("/espace/medecins/nouveau", data=_form())
    assert response.status_code == 422
    assert "déjà celui de Dr Alex Premier" in response.get_data(as_text=True)
    assert len(session.scalars(select(Doctor)).all()) == 1


def test_a_doctor_at_an_unknown_place_is_kept_flagged_then_placed_by_hand(
    client: FlaskClient, session: Session, coordinator: tuple[Territory, User]
) -> None:
    client.post("/espace/medecins/nouveau", data=_form(postal_code="99999", commune="Nulle"))
    doctor = session.scalars(select(Doctor)).one()
    assert doctor.location_precision is LocationPrecision.NONE
    assert "non placé" in client.get("/espace/medecins?filtre=not_placed").get_data(as_text=True)

    swapped = {"lat": "2.9", "lon": "50.7"}
    refused = client.post(f"/espace/medecins/{doctor.id}/placer", data=swapped)
    assert refused.status_code == 302
    session.refresh(doctor)
    assert doctor.location_precision is LocationPrecision.NONE

    client.post(
        f"/espace/medecins/{doctor.id}/placer",
        data={"lat": "50.6881", "lon": "2.8812"},
    )
    session.refresh(doctor)
    assert (doctor.lat, doctor.lon, doctor.location_precision) == (
        50.6881,
        2.8812,
        LocationPrecision.MANUAL,
    )


def test_a_deactivated_doctor_leaves_the_list_and_the_ranking(
    client: FlaskClient,
    session: Session,
    coordinator: tuple[Territory, User],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory, _ = coordinator
    doctor = make_doctor(territory, last_name="Partant")
    client.post(f"/espace/medecins/{doctor.id}/actif", data={"active": "0"})
    session.refresh(doctor)
    assert not doctor.active
    assert "Partant</a>" not in client.get("/espace/medecins").get_data(as_text=True)
    assert "Partant</a>" in client.get("/espace/medecins?filtre=inactive").get_data(as_text=True)
    assert doctor.id not in [p.id for p in doctor_points(session, territory, utcnow())]


def test_another_cpts_doctor_is_a_404(
    client: FlaskClient,
    coordinator: tuple[Territory, User],
    make_territory: Callable[..., Territory],
    make_doctor: Callable[..., Doctor],
) -> None:
    other = make_doctor(make_territory(name="CPTS Autre"), last_name="Ailleurs")
    assert client.get(f"/espace/medecins/{other.id}").status_code == 404
    assert client.post(f"/espace/medecins/{other.id}/actif", data={}).status_code == 404
    assert "Ailleurs" not in client.get("/espace/medecins").get_data(as_text=True)


def test_the_coordinator_edits_availability_and_it_counts_as_a_confirmation(
    client: FlaskClient,
    session: Session,
    coordinator: tuple[Territory, User],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory, _ = coordinator
    old = utcnow() - timedelta(days=300)
    doctor = make_doctor(territory, rpps=VALID_RPPS, confirmed_at=old)
    page = client.get(f"/espace/medecins/{doctor.id}").get_data(as_text=True)
    assert f'value="{VALID_RPPS}"' in page
    client.post(
        f"/espace/medecins/{doctor.id}",
        data=_form(accepting="paused", paused_until=str(date.today() + timedelta(days=60))),
    )
    session.refresh(doctor)
    assert doctor.accepting is Accepting.PAUSED
    assert doctor.confirmed_at is not None and doctor.confirmed_at > old
