"""A doctor's secondary practice sites: staff screens, ranking, map, survey file, directory."""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import (
    Doctor,
    DoctorEvent,
    DoctorSite,
    LocationPrecision,
    Request,
    Territory,
    User,
    VolunteerStatus,
    utcnow,
)
from models.migrate import _alembic_config
from orientation.services.doctor_directory import import_directory
from orientation.services.doctor_import import import_doctors
from orientation.services.doctors import rpps_with_key
from orientation.services.matching import rank_doctors
from tests.conftest import AuthActions

SAMPLE_DIRECTORY = Path(__file__).parent / "data" / "PS_LibreAcces_Personne_activite_sample.txt"
ARMENTIERES, HOUPLINES, CHAPELLE = "59017", "59317", "59143"


@pytest.fixture
def territory(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory(communes=[ARMENTIERES, CHAPELLE, HOUPLINES])


@pytest.fixture
def coordinator(
    auth: AuthActions, territory: Territory, make_user: Callable[..., User]
) -> Territory:
    auth.login(make_user(territory))
    return territory


def site_form(prefix: str = "new", **values: str) -> dict[str, str]:
    fields = {"site_address": "", "site_postal_code": "", "site_commune": ""} | values
    return {f"{prefix}-{name}": value for name, value in fields.items()}


def sites(session: Session, doctor: Doctor) -> list[DoctorSite]:
    session.expire_all()
    return list(
        session.scalars(
            select(DoctorSite).where(DoctorSite.doctor_id == doctor.id).order_by(DoctorSite.id)
        )
    )


def test_the_coordinator_adds_edits_and_removes_a_secondary_site_each_an_event(
    client: FlaskClient,
    session: Session,
    coordinator: Territory,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(coordinator, insee=HOUPLINES)
    response = client.post(
        f"/espace/medecins/{doctor.id}/sites",
        data=site_form(
            site_address="3 place du Général de Gaulle",
            site_postal_code="59280",
            site_commune="Armentières",
        ),
    )
    assert response.status_code == 302
    [site] = sites(session, doctor)
    assert (site.commune_insee, site.location_precision) == (
        ARMENTIERES,
        LocationPrecision.COMMUNE,
    )
    page = client.get(f"/espace/medecins/{doctor.id}").get_data(as_text=True)
    assert "Site secondaire 1" in page and 'value="3 place du Général de Gaulle"' in page

    client.post(
        f"/espace/medecins/{doctor.id}/sites/{site.id}",
        data=site_form(
            f"s{site.id}",
            site_address="2 rue de la Gare",
            site_postal_code="59930",
            site_commune="La Chapelle-d'Armentières",
        ),
    )
    [site] = sites(session, doctor)
    assert (site.address, site.commune_insee) == ("2 rue de la Gare", CHAPELLE)

    client.post(f"/espace/medecins/{doctor.id}/sites/{site.id}/supprimer")
    assert sites(session, doctor) == []
    events = select(DoctorEvent.action).where(DoctorEvent.doctor_id == doctor.id)
    actions = session.scalars(events.order_by(DoctorEvent.id)).all()
    assert actions == ["site_added", "site_updated", "site_removed"]


def test_an_empty_site_or_coordinates_outside_france_save_nothing(
    client: FlaskClient,
    session: Session,
    coordinator: Territory,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(coordinator)
    empty = client.post(
        f"/espace/medecins/{doctor.id}/sites", data=site_form(), follow_redirects=True
    )
    assert "Indiquez l&#39;adresse, le code postal ou la commune." in empty.get_data(as_text=True)
    swapped = client.post(
        f"/espace/medecins/{doctor.id}/sites",
        data=site_form(site_address="x", **{"site_lat": "2.88", "site_lon": "50.68"}),
        follow_redirects=True,
    )
    assert "hors de France" in swapped.get_data(as_text=True)
    assert sites(session, doctor) == []


def test_a_site_that_cannot_be_geocoded_is_kept_flagged_then_placed_by_hand(
    client: FlaskClient,
    session: Session,
    coordinator: Territory,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(coordinator)
    client.post(
        f"/espace/medecins/{doctor.id}/sites",
        data=site_form(site_address="Lieu-dit inconnu", site_postal_code="99999"),
    )
    [site] = sites(session, doctor)
    assert site.location_precision is LocationPrecision.NONE and not site.placed
    listing = client.get("/espace/medecins?filtre=not_placed").get_data(as_text=True)
    assert doctor.display_name in listing and "site secondaire non placé" in listing

    placed = client.post(
        f"/espace/medecins/{doctor.id}/sites/{site.id}/placer",
        data={"lat": "50.6912", "lon": "2.8799"},
        headers={"Accept": "application/json"},
    )
    assert placed.get_json() == {"lat": 50.6912, "lon": 2.8799}
    [site] = sites(session, doctor)
    assert site.location_precision is LocationPrecision.MANUAL
    # A later edit without coordinates keeps the hand placement.
    client.post(
        f"/espace/medecins/{doctor.id}/sites/{site.id}",
        data=site_form(f"s{site.id}", site_address="Lieu-dit connu", site_postal_code="99999"),
    )
    [site] = sites(session, doctor)
    assert (site.address, site.lat, site.location_precision) == (
        "Lieu-dit connu",
        50.6912,
        LocationPrecision.MANUAL,
    )


HAND_POINT = (50.6912, 2.8799)  # in Armentières, away from the commune's point


def shown_site_form(page: str, site: DoctorSite) -> dict[str, str]:
    """The site's edit form as the doctor's page shows it: what a click on save posts."""
    prefix = f"s{site.id}-"
    fields = re.findall(rf'name="({prefix}site_\w+)"[^>]*?value="([^"]*)"', page)
    return {name: html.unescape(value) for name, value in fields}


def map_sites(client: FlaskClient) -> list[tuple[float, float]]:
    """The secondary sites drawn on the doctors' map, as (lat, lon)."""
    return [(lat, lon) for _, lon, lat, _ in client.get("/espace/carte.json").get_json()["sites"]]


@pytest.fixture
def hand_placed_site(
    client: FlaskClient,
    session: Session,
    coordinator: Territory,
    make_doctor: Callable[..., Doctor],
) -> tuple[Doctor, DoctorSite]:
    """A secondary site in Armentières (a known commune) moved by hand off the commune's point."""
    doctor = make_doctor(coordinator, insee=HOUPLINES)
    client.post(
        f"/espace/medecins/{doctor.id}/sites",
        data=site_form(
            site_address="3 place du Général de Gaulle",
            site_postal_code="59280",
            site_commune="Armentières",
        ),
    )
    [site] = sites(session, doctor)
    client.post(
        f"/espace/medecins/{doctor.id}/sites/{site.id}/placer",
        data={"lat": str(HAND_POINT[0]), "lon": str(HAND_POINT[1])},
    )
    assert map_sites(client) == [HAND_POINT]
    return doctor, site


def test_saving_a_hand_placed_site_as_shown_keeps_it_where_it_was_placed(
    client: FlaskClient, session: Session, hand_placed_site: tuple[Doctor, DoctorSite]
) -> None:
    doctor, site = hand_placed_site
    page = client.get(f"/espace/medecins/{doctor.id}").get_data(as_text=True)
    hint = "Placé à la main sur la carte : ce point reste tant que l'adresse ne change pas."
    assert hint in html.unescape(page)
    form = shown_site_form(page, site)
    assert form[f"s{site.id}-site_commune"] == "Armentières"
    saved = client.post(
        f"/espace/medecins/{doctor.id}/sites/{site.id}", data=form, follow_redirects=True
    )
    assert "Site secondaire modifié." in saved.get_data(as_text=True)
    assert map_sites(client) == [HAND_POINT]  # not back on Armentières' point
    [site] = sites(session, doctor)
    assert site.location_precision is LocationPrecision.MANUAL
    # Nothing changed, so the history says nothing either.
    actions = session.scalars(
        select(DoctorEvent.action).where(DoctorEvent.doctor_id == doctor.id)
    ).all()
    assert "site_updated" not in actions


@pytest.mark.parametrize(
    ("changed", "insee"),
    [
        ({"site_address": "5 rue Nationale"}, ARMENTIERES),
        ({"site_postal_code": "59930", "site_commune": "La Chapelle-d'Armentières"}, CHAPELLE),
    ],
    ids=["street", "postal-code-and-commune"],
)
def test_a_new_address_for_a_hand_placed_site_places_it_again_from_the_address(
    client: FlaskClient,
    session: Session,
    hand_placed_site: tuple[Doctor, DoctorSite],
    changed: dict[str, str],
    insee: str,
) -> None:
    doctor, site = hand_placed_site
    page = client.get(f"/espace/medecins/{doctor.id}").get_data(as_text=True)
    form = shown_site_form(page, site) | {f"s{site.id}-{k}": v for k, v in changed.items()}
    client.post(f"/espace/medecins/{doctor.id}/sites/{site.id}", data=form)
    commune = gazetteer().get(insee)
    assert commune is not None
    assert map_sites(client) == [(round(commune.lat, 5), round(commune.lon, 5))]
    [site] = sites(session, doctor)
    assert (site.commune_insee, site.location_precision) == (insee, LocationPrecision.COMMUNE)
    page = client.get(f"/espace/medecins/{doctor.id}").get_data(as_text=True)
    assert "Placé à la main" not in page


def test_another_cpts_doctors_site_is_a_404(
    client: FlaskClient,
    session: Session,
    coordinator: Territory,
    make_territory: Callable[..., Territory],
    make_doctor: Callable[..., Doctor],
) -> None:
    other = make_doctor(make_territory(name="Ailleurs"))
    session.add(DoctorSite(territory_id=other.territory_id, doctor_id=other.id, address="x"))
    session.commit()
    site_id = session.scalars(select(DoctorSite.id)).one()
    assert client.post(f"/espace/medecins/{other.id}/sites", data=site_form()).status_code == 404
    assert client.post(f"/espace/medecins/{other.id}/sites/{site_id}/supprimer").status_code == 404


def test_ranking_measures_from_the_nearest_site_and_lists_the_doctor_once(
    client: FlaskClient,
    session: Session,
    coordinator: Territory,
    make_doctor: Callable[..., Doctor],
    make_request: Callable[..., Request],
) -> None:
    # The household lives in Armentières; the doctor's main practice is in Houplines and a
    # secondary site in Armentières itself.
    doctor = make_doctor(
        coordinator, insee=HOUPLINES, last_name="Deuxsites", practice_address="1 rue de Lille"
    )
    armentieres = gazetteer().get(ARMENTIERES)
    assert armentieres is not None
    session.add(
        DoctorSite(
            territory_id=coordinator.id,
            doctor_id=doctor.id,
            address="3 place du Général de Gaulle",
            postal_code="59280",
            commune_insee=ARMENTIERES,
            lat=armentieres.lat,
            lon=armentieres.lon,
            location_precision=LocationPrecision.COMMUNE,
        )
    )
    session.commit()
    request = make_request(coordinator)
    ranking = rank_doctors(session, coordinator, request, utcnow())
    [candidate] = ranking.candidates
    assert candidate.site is not None and candidate.distance_km < 0.01
    assert candidate.address == "3 place du Général de Gaulle 59280"
    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    assert page.count("Dr Alex Deuxsites") >= 1
    assert "3 place du Général de Gaulle 59280" in page and "site secondaire" in page
    # The proposal drafted for the patient gives the address the distance was measured from.
    sms = html.unescape(page.split('name="sms_body"', 1)[1].split("</textarea>", 1)[0])
    assert "Dr Alex Deuxsites, 3 place du Général de Gaulle, 59280" in sms
    assert "1 rue de Lille" not in sms


def test_the_map_shows_every_placed_site_of_a_volunteer(
    client: FlaskClient,
    session: Session,
    coordinator: Territory,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(coordinator, insee=HOUPLINES)
    unplaced_main = make_doctor(coordinator, lat=None, lon=None, location_precision="none")
    make_doctor(coordinator, lat=None, lon=None, location_precision="none")  # nowhere
    chapelle = gazetteer().get(CHAPELLE)
    assert chapelle is not None
    for owner, lat in ((doctor, chapelle.lat), (doctor, None), (unplaced_main, chapelle.lat)):
        session.add(
            DoctorSite(
                territory_id=coordinator.id,
                doctor_id=owner.id,
                commune_insee=CHAPELLE,
                lat=lat,
                lon=chapelle.lon if lat else None,
                location_precision=LocationPrecision.COMMUNE if lat else LocationPrecision.NONE,
            )
        )
    session.commit()
    collection = client.get("/espace/carte.json").get_json()
    communes = collection["communes"]
    features = {f["properties"]["id"]: f for f in collection["features"][1:]}
    # The doctor's main practice is a feature; the placed secondary site a compact entry
    # [id, lon, lat, commune] drawn with the same properties; the unplaced site waits.
    assert communes[features[doctor.id]["properties"]["c"]] == "Houplines"
    [(site_doctor, lon, lat, c)] = collection["sites"]
    assert (site_doctor, communes[c]) == (doctor.id, "La Chapelle-d'Armentières")
    assert (lat, lon) == (round(chapelle.lat, 5), round(chapelle.lon, 5))
    # A doctor placed only at a secondary site is drawn there, marked as such.
    only_site = features[unplaced_main.id]["properties"]
    assert (only_site["x"], communes[only_site["c"]]) == (1, "La Chapelle-d'Armentières")
    assert len(features) == 2


HEADER = "RPPS;Nom;Prénom;Code postal;Commune;Accepte de nouveaux patients;Combien"
SITE_COLUMNS = ";Adresse 2;Code postal 2;Commune 2;Latitude 2;Longitude 2"


def survey(*rows: str, header: str = HEADER + SITE_COLUMNS) -> bytes:
    return ("\r\n".join([header, *rows]) + "\r\n").encode("utf-8")


def run(session: Session, territory: Territory, raw: bytes) -> tuple[int, int, int, list[object]]:
    report = import_doctors(session, gazetteer(), territory, raw, now=utcnow(), actor_label="t")
    session.commit()
    return report.created, report.updated, report.unchanged, list(report.rejected)


def test_the_survey_file_takes_a_second_site_in_numbered_columns_and_reimports_cleanly(
    session: Session, territory: Territory
) -> None:
    rpps = rpps_with_key("3000000001")
    row = f"{rpps};Lefèvre;Hélène;59116;Houplines;oui;3;12 rue de Lille;59280;Armentières;;"
    assert run(session, territory, survey(row)) == (1, 0, 0, [])
    doctor = session.scalars(select(Doctor)).one()
    [site] = sites(session, doctor)
    assert (doctor.commune_insee, site.address, site.commune_insee) == (
        HOUPLINES,
        "12 rue de Lille",
        ARMENTIERES,
    )
    # The same file again changes nothing; a file without site columns leaves sites alone.
    assert run(session, territory, survey(row)) == (0, 0, 1, [])
    plain = survey(f"{rpps};Lefèvre;Hélène;59116;Houplines;oui;3", header=HEADER)
    assert run(session, territory, plain) == (0, 0, 1, [])
    assert [s.id for s in sites(session, doctor)] == [site.id]
    # An empty site cell in a file with site columns removes it, with an event.
    emptied = f"{rpps};Lefèvre;Hélène;59116;Houplines;oui;3;;;;;"
    assert run(session, territory, survey(emptied)) == (0, 1, 0, [])
    assert sites(session, doctor) == []
    event = session.scalars(select(DoctorEvent).order_by(DoctorEvent.id.desc())).first()
    assert event is not None and event.changes["sites"] == [["12 rue de Lille 59280"], []]


def test_importing_the_survey_file_again_keeps_a_site_placed_by_hand(
    client: FlaskClient, session: Session, coordinator: Territory
) -> None:
    rpps = rpps_with_key("3000000004")
    row = f"{rpps};Lefèvre;Hélène;59116;Houplines;oui;3;12 rue de Lille;59280;Armentières;;"
    run(session, coordinator, survey(row))
    doctor = session.scalars(select(Doctor)).one()
    [site] = sites(session, doctor)
    client.post(
        f"/espace/medecins/{doctor.id}/sites/{site.id}/placer",
        data={"lat": str(HAND_POINT[0]), "lon": str(HAND_POINT[1])},
    )
    [site] = sites(session, doctor)  # as the import reads it: placed by hand
    assert site.location_precision is LocationPrecision.MANUAL
    # The same row again (no coordinates: the survey does not know the hand placement).
    assert run(session, coordinator, survey(row)) == (0, 0, 1, [])
    assert map_sites(client) == [HAND_POINT]
    [kept] = sites(session, doctor)
    assert (kept.id, kept.location_precision) == (site.id, LocationPrecision.MANUAL)


def test_a_bad_second_site_rejects_its_row_with_the_reason(
    session: Session, territory: Territory
) -> None:
    bad = f"{rpps_with_key('3000000002')};Nom;P;59280;Armentières;oui;1;x;;;2,88;50,68"
    half = f"{rpps_with_key('3000000003')};Nom;P;59280;Armentières;oui;1;x;;;50,7;"
    created, _, _, rejected = run(session, territory, survey(bad, half))
    assert created == 0
    assert rejected == [
        (2, "site 2 : Ces coordonnées sont hors de France (latitude puis longitude, "
            "par exemple 50.6881 et 2.8812)."),
        (3, "site 2 : latitude et longitude vont ensemble"),
    ]  # fmt: skip
    assert session.scalars(select(DoctorSite)).all() == []


def test_the_export_lists_every_site_and_reads_back_as_the_same_doctors(
    client: FlaskClient,
    session: Session,
    coordinator: Territory,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(coordinator, insee=HOUPLINES, rpps=rpps_with_key("3000000009"))
    make_doctor(coordinator, rpps=rpps_with_key("3000000010"))
    for address, postal, insee in (("A", "59280", ARMENTIERES), ("B", "59930", CHAPELLE)):
        commune = gazetteer().get(insee)
        assert commune is not None
        session.add(
            DoctorSite(
                territory_id=coordinator.id,
                doctor_id=doctor.id,
                address=address,
                postal_code=postal,
                commune_insee=insee,
                lat=commune.lat,
                lon=commune.lon,
                location_precision=LocationPrecision.COMMUNE,
            )
        )
    session.commit()
    body = client.get("/espace/medecins/export.csv").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff")), delimiter=";"))
    mine = next(r for r in rows if r["RPPS"] == doctor.rpps)
    assert (mine["Adresse 2"], mine["Commune 2"], mine["Adresse 3"], mine["Commune 3"]) == (
        "A",
        "Armentières",
        "B",
        "La Chapelle-d'Armentières",
    )
    other = next(r for r in rows if r["RPPS"] != doctor.rpps)
    assert other["Adresse 2"] == other["Adresse 3"] == ""
    created, updated, unchanged, rejected = run(session, coordinator, body.encode("utf-8"))
    assert (created, rejected) == (0, [])
    assert [s.address for s in sites(session, doctor)] == ["A", "B"]


def test_the_directory_keeps_each_activity_place_in_the_territory_as_a_site(
    session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    # Known before the import and still 'not yet volunteer': gets the places it lacks.
    known = make_doctor(
        territory,
        rpps="10000000033",
        insee=HOUPLINES,
        practice_address="40 Avenue Foch",
        volunteer_status=VolunteerStatus.NOT_YET,
    )
    with SAMPLE_DIRECTORY.open(encoding="utf-8") as lines:
        report = import_directory(
            session, gazetteer(), territory, lines, now=utcnow(), actor_label="test"
        )
    session.commit()
    bensaid = session.scalars(select(Doctor).where(Doctor.rpps == "10000000025")).one()
    [second] = sites(session, bensaid)
    assert (bensaid.commune_insee, second.commune_insee, second.address) == (
        ARMENTIERES,
        HOUPLINES,
        "8 Rue Nationale",
    )
    nowak = session.scalars(select(Doctor).where(Doctor.rpps == "10000000074")).one()
    assert sites(session, nowak) == []  # her other activity is in Lille
    assert sites(session, known) == []  # its one activity is the practice it has
    assert (report.created, report.already_known, report.sites) == (4, 1, 1)


def test_the_migration_keeps_existing_doctors_and_adds_the_sites_table(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0009")
        # Raw SQL with the columns of that revision: the models may have moved on since.
        connection.execute(
            text(
                "INSERT INTO territories (id, name, slug, contact_phone, contact_email,"
                " postal_address, dpo_contact, max_distance_km, availability_refresh_months,"
                " doctor_answer_delay_hours, retention_closed_months,"
                " retention_out_of_territory_months, retention_message_body_months, created_at)"
                " VALUES (1, 'CPTS', 'cpts', '', '', '', '', 15, 6, 48, 24, 6, 12,"
                " '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO doctors (id, territory_id, rpps, first_name, last_name,"
                " practice_address, postal_code, commune_insee, lat, lon, location_precision,"
                " phone, email, preferred_channel, volunteer_status, accepting, capacity_left,"
                " accepts_under_6, accepts_elderly_dependent, accepts_ald_followup, home_visits,"
                " home_visit_radius_km, languages, step_free_access, coordinator_note,"
                " confirmed_by, active, is_demo, created_at)"
                " VALUES (1, 1, '10000000017', 'Marie', 'Delcourt', '12 rue de Lille', '59280',"
                " '59017', 50.69, 2.88, 'COMMUNE', '', '', 'email', 'VOLUNTEER', 'YES', 2,"
                " 1, 1, 1, 0, 0, '', 0, '', '', 1, 0, '2026-01-01 00:00:00')"
            )
        )
        command.upgrade(config, "head")
    with Session(engine) as session:
        doctor = session.get(Doctor, 1)
        assert doctor is not None
        assert (doctor.practice_address, doctor.lat, doctor.location_precision) == (
            "12 rue de Lille",
            50.69,
            LocationPrecision.COMMUNE,
        )
        assert session.scalars(select(DoctorSite)).all() == []
