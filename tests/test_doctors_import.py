"""Importing the census survey (CSV from Excel) and the national directory extract; exporting."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import Accepting, Doctor, LocationPrecision, Territory, User, VolunteerStatus, utcnow
from orientation.services.doctor_directory import DirectoryRefused, import_directory
from orientation.services.doctor_import import ImportRefused, ImportReport, import_doctors
from orientation.services.doctors import rpps_with_key
from tests.conftest import AuthActions

SAMPLE_DIRECTORY = Path(__file__).parent / "data" / "PS_LibreAcces_Personne_activite_sample.txt"
HEADER = (
    "Nom;Prénom;RPPS;Adresse;Code postal;Commune;Latitude;Longitude;Téléphone;E-mail;"
    "Accepte de nouveaux patients;Combien;Enfants de moins de 6 ans;"
    "Personnes âgées et dépendantes;Suivi ALD;Visites à domicile;Rayon des visites (km);"
    "Langues;Accès de plain-pied"
)


def rpps(n: int) -> str:
    return rpps_with_key(f"2000{n:06d}")


def survey(*rows: str, header: str = HEADER) -> str:
    return "\r\n".join([header, *rows]) + "\r\n"


def run(session: Session, territory: Territory, text: str, encoding: str = "utf-8") -> ImportReport:
    report = import_doctors(
        session,
        gazetteer(),
        territory,
        text.encode(encoding),
        now=utcnow(),
        actor_label="test",
    )
    session.commit()
    return report


@pytest.fixture
def territory(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory(communes=["59017", "59143", "59317"])


def test_excel_french_csv_with_bom_semicolons_and_accents_is_imported(
    session: Session, territory: Territory
) -> None:
    text = "\ufeff" + survey(
        f"Lefèvre;Hélène;{rpps(1)};12 rue de Lille;59280;Armentières;;;06 12 34 56 78;"
        "h.lefevre@example.org;oui;5;non;oui;oui;oui;4,5;français, néerlandais;oui",
    )
    report = run(session, territory, text)
    assert (report.created, report.rejected) == (1, [])
    doctor = session.scalars(select(Doctor)).one()
    assert (doctor.last_name, doctor.first_name, doctor.commune_insee) == (
        "Lefèvre",
        "Hélène",
        "59017",
    )
    assert doctor.accepting is Accepting.YES and doctor.capacity_left == 5
    assert not doctor.accepts_under_6 and doctor.home_visit_radius_km == 4.5
    assert doctor.languages == "français;néerlandais"
    assert doctor.phone == "+33612345678" and doctor.step_free_access


def test_windows_1252_and_commas_are_understood(session: Session, territory: Territory) -> None:
    text = survey(
        f"Dupré,Zoé,{rpps(2)},,59116,Houplines,,,,,non,0,,,,,,,",
        header=HEADER.replace(";", ","),
    )
    report = run(session, territory, text, encoding="cp1252")
    assert report.created == 1
    doctor = session.scalars(select(Doctor)).one()
    assert (doctor.last_name, doctor.first_name, doctor.accepting) == ("Dupré", "Zoé", Accepting.NO)


def test_each_bad_row_is_reported_with_its_line_and_reason_and_the_rest_imported(
    session: Session, territory: Territory
) -> None:
    good = rpps(3)
    text = survey(
        f"Bon;Jean;{good};;59280;Armentières;;;;;oui;2;;;;;;;",
        "Lettres;Ana;1234567890A;;59280;Armentières;;;;;oui;2;;;;;;;",
        "Court;Ana;123456;;59280;Armentières;;;;;oui;2;;;;;;;",
        f"Double;Jean;{good};;59280;Armentières;;;;;oui;2;;;;;;;",
        f"Londres;Tom;{rpps(4)};;;;51.5;-0.12;;;oui;2;;;;;;;",
        f"Tel;Eve;{rpps(5)};;59280;Armentières;;;12;;oui;2;;;;;;;",
        f"Peut;Etre;{rpps(6)};;59280;Armentières;;;;;peut-être;2;;;;;;;",
    )
    report = run(session, territory, text)
    rejected = dict(report.rejected)
    assert report.created == 1
    assert sorted(rejected) == [3, 4, 5, 6, 7, 8]
    assert "que des chiffres" in rejected[3]
    assert "11 chiffres (ici 6)" in rejected[4]
    assert "déjà présent ligne 2" in rejected[5]
    assert "hors de France" in rejected[6]
    assert "numéro de téléphone" in rejected[7]
    assert "oui, non ou pause" in rejected[8]


def test_missing_columns_refuse_the_whole_file(session: Session, territory: Territory) -> None:
    with pytest.raises(ImportRefused, match="Colonnes manquantes : RPPS, Code postal"):
        run(session, territory, survey("Dupont;Jean", header="Nom;Prénom"))
    assert session.scalar(select(func.count()).select_from(Doctor)) == 0


def test_a_reimport_updates_by_rpps_and_never_duplicates(
    session: Session, territory: Territory
) -> None:
    row = f"Martin;Paul;{rpps(7)};;59280;Armentières;;;;;oui;3;;;;;;;"
    run(session, territory, survey(row))
    again = run(session, territory, survey(row))
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)
    first = session.scalars(select(Doctor)).one()
    first.coordinator_note = "Préfère être appelé le midi"
    session.commit()
    changed = run(session, territory, survey(row.replace(";oui;3;", ";non;0;")))
    assert changed.updated == 1
    doctors = session.scalars(select(Doctor)).all()
    assert len(doctors) == 1 and doctors[0].accepting is Accepting.NO
    assert doctors[0].coordinator_note == "Préfère être appelé le midi"


def test_an_address_that_cannot_be_placed_is_kept_and_flagged(
    session: Session, territory: Territory
) -> None:
    run(session, territory, survey(f"Perdu;Max;{rpps(8)};1 rue X;99999;Inconnue;;;;;oui;1;;;;;;;"))
    doctor = session.scalars(select(Doctor)).one()
    assert doctor.location_precision is LocationPrecision.NONE and doctor.lat is None


def test_fifty_thousand_rows_are_imported(session: Session, territory: Territory) -> None:
    rows = [
        f"Nom{i};P;{rpps(10_000 + i)};;59280;Armentières;;;;;oui;1;;;;;;;" for i in range(50_000)
    ]
    report = run(session, territory, survey(*rows))
    assert report.created == 50_000
    assert session.scalar(select(func.count()).select_from(Doctor)) == 50_000


def test_the_directory_extract_adds_the_territorys_gps_as_not_yet_volunteers(
    session: Session, territory: Territory
) -> None:
    with SAMPLE_DIRECTORY.open(encoding="utf-8") as lines:
        report = import_directory(
            session, gazetteer(), territory, lines, now=utcnow(), actor_label="test"
        )
    session.commit()
    doctors = session.scalars(select(Doctor).order_by(Doctor.last_name)).all()
    # GPs in the territory only: not the cardiologist, the nurse, the GP in Lille, nor the
    # ADELI-only doctor; the GP with two activities once; the one without INSEE code placed
    # from the postal code and the commune's name.
    assert [d.last_name for d in doctors] == [
        "BENSAID",
        "DELCOURT",
        "NOWAK",
        "ROUSSEL",
        "VERMEULEN",
    ]
    assert report.created == 5
    assert doctors[3].commune_insee == "59143" and doctors[3].rpps == "10000000082"
    assert all(d.volunteer_status is VolunteerStatus.NOT_YET for d in doctors)
    delcourt = doctors[1]
    assert (delcourt.practice_address, delcourt.commune_insee, delcourt.email) == (
        "12 Rue de Lille",
        "59017",
        "cabinet.delcourt@example.org",
    )
    with SAMPLE_DIRECTORY.open(encoding="utf-8") as lines:
        again = import_directory(
            session, gazetteer(), territory, lines, now=utcnow(), actor_label="test"
        )
    assert (again.created, again.already_known, again.sites) == (0, 5, 0)


def test_a_file_that_is_not_the_directory_is_refused(
    session: Session, territory: Territory
) -> None:
    with pytest.raises(DirectoryRefused, match="PS_LibreAcces"):
        import_directory(
            session, gazetteer(), territory, ["a|b|c", "1|2|3"], now=utcnow(), actor_label="t"
        )


def test_the_coordinator_uploads_a_survey_sees_the_report_and_exports(
    client: FlaskClient,
    auth: AuthActions,
    territory: Territory,
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(territory))
    text = survey(
        f"=HYPERLINK(1);Paul;{rpps(9)};;59280;Armentières;;;;;oui;3;;;;;;;",
        "Mauvais;Ana;12;;59280;Armentières;;;;;oui;2;;;;;;;",
    )
    response = client.post(
        "/espace/medecins/import",
        data={"file": (io.BytesIO(text.encode("cp1252")), "recensement.csv")},
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<strong>1</strong> ajoutés" in page
    assert '<td class="num">3</td><td>Le numéro RPPS compte 11 chiffres (ici 2).</td>' in page

    export = client.get("/espace/medecins/export.csv")
    body = export.get_data(as_text=True)
    assert export.mimetype == "text/csv" and body.startswith("\ufeffRPPS;Nom;")
    assert f"{rpps(9)};'=HYPERLINK(1);Paul" in body  # a formula is neutralised


def test_the_coordinator_uploads_the_directory_extract(
    client: FlaskClient,
    auth: AuthActions,
    territory: Territory,
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(territory))
    response = client.post(
        "/espace/medecins/annuaire",
        data={"file": (SAMPLE_DIRECTORY.open("rb"), "PS_LibreAcces.txt")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert "5 médecins généralistes ajoutés" in page
    assert "1 sites secondaires" in page
    assert "Pas encore volontaire" in page
