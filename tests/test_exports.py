"""Exports of requests and messages: CSV for French spreadsheets, XLSX, pseudonymised, audited."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from models import AuditEntry, Channel, Reason, Role, Source, Status
from notifications.outbox import queue_message

DANGEROUS = ['=HYPERLINK("http://x")', "+33 cmd", "-2+3", "@SUM(A1)"]


def _csv(response_data: bytes) -> list[list[str]]:
    assert response_data.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(response_data.decode("utf-8-sig")), delimiter=";"))


@pytest.fixture
def coordinator(make_territory, make_user, auth):  # type: ignore[no-untyped-def]
    territory = make_territory()
    user = make_user(territory, Role.COORDINATOR)
    auth.login(user)
    return territory, user


def _download(client, fmt="csv", kind="requests", **params):  # type: ignore[no-untyped-def]
    query = {"du": "2026-01-01", "au": "2026-12-31", "format": fmt, "type": kind, **params}
    response = client.get("/espace/exports/telecharger", query_string=query)
    response.get_data()  # read it all, then close it as a WSGI server does
    response.close()
    return response


def test_the_csv_export_has_a_bom_semicolons_accents_and_one_line_per_request(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(
        territory,
        persons=[("Hélène", "Lefèvre", date(1950, 2, 1)), ("Noé", "Lefèvre", date(2023, 1, 1))],
        created_at=datetime(2026, 3, 4, 9, tzinfo=UTC),
    )
    make_request(territory, created_at=datetime(2025, 12, 31, 9, tzinfo=UTC))  # before the period
    response = _download(client)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = _csv(response.data)
    assert rows[0][0] == "référence"
    assert len(rows) == 2
    line = dict(zip(rows[0], rows[1], strict=True))
    assert line["noms"] == "Hélène Lefèvre, Noé Lefèvre"
    assert line["téléphone"] == "06 12 34 56 78"
    assert line["70 ans et plus"] == "oui" and line["moins de 6 ans"] == "oui"
    assert line["commune"] == "Armentières"
    # Paris time with its offset, as the database formats it, the same on both databases.
    assert line["date de la demande"] == "2026-03-04T10:00+01:00"
    assert line["dates de naissance"] == "1950-02-01, 2023-01-01"


def test_names_that_look_like_formulas_are_neutralised_in_csv_and_xlsx(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    for name in DANGEROUS:
        make_request(
            territory, persons=[(name, "X", None)], created_at=datetime(2026, 5, 1, tzinfo=UTC)
        )
    rows = _csv(_download(client).data)
    names = [row[rows[0].index("noms")] for row in rows[1:]]
    assert sorted(names) == sorted(f"'{n} X" for n in DANGEROUS)

    response = _download(client, fmt="xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    header = [c.value for c in sheet[1]]
    cells = [row[header.index("noms")] for row in sheet.iter_rows(min_row=2)]
    assert sorted(c.value for c in cells) == sorted(f"'{n} X" for n in DANGEROUS)
    assert all(c.data_type == "s" for c in cells)


def test_the_pseudonymised_export_has_no_name_no_contact_and_age_bands(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    request = make_request(
        territory,
        persons=[("Marcel", "Dupont", date(1950, 6, 1))],
        email="marcel@example.org",
        street="3 rue des Lilas",
        created_at=datetime(2026, 6, 2, tzinfo=UTC),
    )
    data = _download(client, kind="pseudonymised").data
    text = data.decode("utf-8-sig")
    for secret in ("Marcel", "Dupont", "marcel@example.org", "Lilas", "1950", request.reference):
        assert secret not in text
    rows = _csv(data)
    line = dict(zip(rows[0], rows[1], strict=True))
    assert line["tranches d'âge"] == "70-79"
    assert line["commune"] == "Armentières"
    assert line["date de la demande"] == "2026-06-02"


def test_an_age_band_changes_on_the_birthday_not_the_day_before(client, coordinator, make_request):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    born = date(1956, 6, 2)  # 70 on the day of the second request
    for day in (1, 2):
        make_request(
            territory, persons=[("Marcel", "Dupont", born)],
            created_at=datetime(2026, 6, day, 21, 30, tzinfo=UTC),  # 23:30 in Paris
        )  # fmt: skip
    rows = _csv(_download(client, kind="pseudonymised").data)
    bands = [row[rows[0].index("tranches d'âge")] for row in rows[1:]]
    assert bands == ["60-69", "70-79"]


def test_filters_that_match_nothing_give_a_header_only_file(client, coordinator, make_request):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(territory, source=Source.PHONE, created_at=datetime(2026, 2, 1, tzinfo=UTC))
    rows = _csv(_download(client, statut="oriented").data)
    assert len(rows) == 1 and rows[0][0] == "référence"
    sheet = load_workbook(io.BytesIO(_download(client, fmt="xlsx", source="api").data)).active
    assert sheet.max_row == 1
    rows = _csv(_download(client, source="phone", priorite="not_priority").data)
    assert len(rows) == 2


def test_the_form_says_when_no_request_matches_and_when_the_period_is_empty(client, coordinator):  # type: ignore[no-untyped-def]
    page = client.get("/espace/exports", query_string={"du": "2026-01-01", "au": "2026-12-31"})
    assert "Aucune demande ne correspond" in page.get_data(as_text=True)
    page = client.get("/espace/exports", query_string={"du": "", "au": "", "apercu": "1"})
    assert "Indiquez une date de début et une date de fin." in page.get_data(as_text=True)
    response = _download(client, du="")
    assert response.status_code == 400


def test_a_ten_year_period_is_accepted(client, coordinator, make_request):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(territory, created_at=datetime(2018, 2, 1, tzinfo=UTC))
    make_request(territory, created_at=datetime(2027, 11, 1, tzinfo=UTC))
    rows = _csv(_download(client, du="2018-01-01", au="2027-12-31").data)
    assert len(rows) == 3


def test_every_export_is_audited_with_who_what_filter_and_rows(
    client, coordinator, make_request, session
):  # type: ignore[no-untyped-def]
    territory, user = coordinator
    make_request(territory, created_at=datetime(2026, 2, 1, tzinfo=UTC))
    make_request(territory, created_at=datetime(2026, 3, 1, tzinfo=UTC), status=Status.ORIENTED)
    _download(client, fmt="xlsx", statut="eligible")
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "export"))
    assert entry is not None
    assert entry.user_id == user.id and entry.territory_id == territory.id
    assert entry.details["rows"] == 1
    assert entry.details["format"] == "xlsx"
    assert entry.details["filter"]["statuses"] == ["eligible"]


def test_another_cptss_requests_never_appear_in_an_export(
    client, coordinator, make_territory, make_request
):  # type: ignore[no-untyped-def]
    other = make_territory()
    make_request(
        other, persons=[("Autre", "Cpts", None)], created_at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert "Autre" not in _download(client).data.decode("utf-8-sig")


def test_the_message_log_export_has_channel_purpose_and_status_but_no_body(
    client, coordinator, session
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    message = queue_message(
        session,
        territory_id=territory.id,
        channel=Channel.SMS,
        recipient="+33612345678",
        body="Votre code secret 1234",
        purpose="proposal",
        idempotency_key="k1",
    )
    message.created_at = datetime(2026, 4, 1, tzinfo=UTC)
    session.commit()
    data = _download(client, kind="messages").data
    text = data.decode("utf-8-sig")
    assert "secret" not in text and "612345678" not in text
    rows = _csv(data)
    # In the outbox page's words, not the codes (sms, proposal, queued).
    assert rows[1][1:4] == ["SMS", "proposition au patient", "En attente d'envoi"]


def test_staff_must_log_in_and_referrers_cannot_export(client, make_territory, make_user, auth):  # type: ignore[no-untyped-def]
    assert _download(client).status_code == 302
    auth.login(make_user(make_territory(), Role.REFERRER))
    assert _download(client).status_code == 403


def test_the_csv_opens_in_libreoffice_with_accents_and_columns_right(
    client, coordinator, make_request, tmp_path: Path
):  # type: ignore[no-untyped-def]
    soffice = shutil.which("soffice")
    if soffice is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("LibreOffice (soffice) is required in CI for the CSV round trip")
        pytest.skip("LibreOffice is not installed: apt-get install libreoffice-calc-nogui")
    territory, _ = coordinator
    make_request(
        territory,
        persons=[("Éloïse", "Cœur", date(1990, 1, 1)), ("=1+1", "Ça", None)],
        created_at=datetime(2026, 2, 1, tzinfo=UTC),
    )
    source = tmp_path / "export.csv"
    source.write_bytes(_download(client).data)
    # Filter options: separator ';' (59), quote '"' (34), UTF-8 (76), first line 1.
    subprocess.run(
        [soffice, "--headless", f"-env:UserInstallation=file://{tmp_path}/lo",
         "--infilter=CSV:59,34,76,1", "--convert-to", "xlsx", "--outdir", str(tmp_path),
         str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    sheet = load_workbook(tmp_path / "export.xlsx").active
    header = [c.value for c in sheet[1]]
    assert header[:3] == ["référence", "date de la demande", "statut"]
    values = dict(zip(header, [c.value for c in sheet[2]], strict=True))
    assert values["noms"] == "Éloïse Cœur, =1+1 Ça"  # not at the start: harmless text
    assert values["commune"] == "Armentières"
    assert (values["statut"], values["source"]) == ("Éligible", "Questionnaire")
    assert values["motif"] == "Médecin parti ou à la retraite"
    assert sheet.max_column == len(header)


def test_a_birth_date_typed_after_the_request_gives_an_unknown_age_band_not_a_failed_export(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(
        territory,
        persons=[("Léa", "Martin", date(2027, 3, 1)), ("Paul", "Martin", date(1980, 1, 1))],
        created_at=datetime(2026, 6, 2, tzinfo=UTC),
    )
    rows = _csv(_download(client, kind="pseudonymised").data)
    line = dict(zip(rows[0], rows[1], strict=True))
    assert line["tranches d'âge"] == "inconnu, 40-59"
    sheet = load_workbook(io.BytesIO(_download(client, fmt="xlsx", kind="pseudonymised").data))
    assert sheet.active.max_row == 2


def test_a_text_a_spreadsheet_would_show_as_an_error_is_kept_as_text(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(territory, street="#N/A", created_at=datetime(2026, 6, 2, tzinfo=UTC))
    sheet = load_workbook(io.BytesIO(_download(client, fmt="xlsx").data)).active
    header = [c.value for c in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("adresse") + 1)
    assert (cell.value, cell.data_type) == ("'#N/A", "s")


def test_the_exports_page_offers_the_doctors_file_and_the_message_log(
    client, coordinator, make_doctor, session
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_doctor(territory, last_name="Lefèvre")
    page = client.get("/espace/exports").get_data(as_text=True)
    assert 'href="/espace/medecins/export.csv"' in page
    year = datetime.now(UTC).year
    messages = f"/espace/exports/telecharger?type=messages&amp;format=csv&amp;du={year}-01-01"
    assert messages in page
    doctors = client.get("/espace/medecins/export.csv")
    assert doctors.status_code == 200 and "Lefèvre" in doctors.get_data(as_text=True)
    log = client.get(messages.replace("&amp;", "&") + f"&au={year}-12-31")
    assert log.status_code == 200 and _csv(log.data)[0][:2] == ["date", "canal"]
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"doctor.export", "export"} <= actions


def test_a_request_whose_processing_is_limited_is_left_out_of_every_request_export(
    client, coordinator, make_request, session
):  # type: ignore[no-untyped-def]
    # RGPD art. 18: kept, not processed; a copy in a spreadsheet would be processing it.
    territory, _ = coordinator
    make_request(
        territory,
        persons=[("Kept", "Out", None)],
        created_at=datetime(2026, 2, 1, tzinfo=UTC),
        processing_limited_at=datetime(2026, 2, 3, tzinfo=UTC),
    )
    make_request(
        territory, persons=[("Shown", "In", None)], created_at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    for kind in ("requests", "pseudonymised"):
        for fmt in ("csv", "xlsx"):
            response = _download(client, fmt=fmt, kind=kind)
            if fmt == "csv":
                rows = _csv(response.data)
            else:
                sheet = load_workbook(io.BytesIO(response.data), read_only=True).active
                rows = [list(r) for r in sheet.iter_rows(values_only=True)]
            assert len(rows) == 2, (kind, fmt)  # the header and the other request
            assert "Kept" not in str(rows)
    page = client.get("/espace/exports", query_string={"du": "2026-01-01", "au": "2026-12-31"})
    text = page.get_data(as_text=True)
    assert "1 ligne correspond à ces critères." in text
    assert "1 demande au traitement limité (à la demande du patient) n'est pas exportée" in text
    entry = session.scalars(select(AuditEntry).where(AuditEntry.action == "export")).first()
    assert entry.details["rows"] == 1 and entry.details["filter"]["left_out_limited"] == 1


def test_the_filters_are_named_groups_and_the_communes_in_alphabetical_order(
    client, make_territory, make_user, auth
):  # type: ignore[no-untyped-def]
    # Pérenchies (59457) sorts before Prémesques (59470), accents or not.
    territory = make_territory("CPTS Lys", ["59470", "59457", "59017"])
    auth.login(make_user(territory, Role.COORDINATOR))
    page = client.get("/espace/exports").get_data(as_text=True)
    assert '<label for="statut"' not in page and '<label for="source"' not in page
    assert "<legend>Statuts</legend>" in page and "<legend>Sources</legend>" in page
    assert page.index(">Armentières<") < page.index(">Pérenchies<") < page.index(">Prémesques<")


# Every code the export could write in a cell instead of its label.
CODES = (
    {m.value for m in Status}
    | {m.name for m in Status}
    | {m.value for m in Source}
    | {m.value for m in Reason}
)


def test_request_exports_say_status_source_and_reason_in_french_words_not_codes(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    # What a coordinator reads in LibreOffice: the words of the request page, in every variant.
    territory, _ = coordinator
    make_request(
        territory, status=Status.DOCTORS_CONTACTED, source=Source.PHONE, reason=Reason.MOVED,
        created_at=datetime(2026, 4, 1, tzinfo=UTC),
    )  # fmt: skip
    make_request(
        territory, status=Status.OUT_OF_TERRITORY, source=Source.API,
        reason=Reason.CANNOT_CONTINUE, created_at=datetime(2026, 4, 2, tzinfo=UTC),
    )  # fmt: skip
    expected = [
        ("Médecins sollicités", "Téléphone", "Vient d'emménager"),
        ("Hors territoire", "Logiciel partenaire", "Ne peut plus continuer avec son médecin"),
    ]
    for kind in ("requests", "pseudonymised"):
        for fmt in ("csv", "xlsx"):
            response = _download(client, fmt=fmt, kind=kind)
            if fmt == "csv":
                rows = _csv(response.data)
            else:
                sheet = load_workbook(io.BytesIO(response.data)).active
                rows = [
                    ["" if v is None else v for v in r] for r in sheet.iter_rows(values_only=True)
                ]
            lines = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
            assert [(x["statut"], x["source"], x["motif"]) for x in lines] == expected, (kind, fmt)
            cells = {value for row in rows[1:] for value in row if isinstance(value, str)}
            assert not cells & CODES, (kind, fmt)


def test_a_closed_request_reads_its_status_and_reason_in_words_and_its_closing_note_as_typed(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(
        territory, status=Status.CLOSED, closed_reason="plus joignable",
        created_at=datetime(2026, 4, 1, tzinfo=UTC),
    )  # fmt: skip
    line = dict(zip(*_csv(_download(client).data), strict=True))
    assert (line["statut"], line["motif"]) == ("Clôturée", "Médecin parti ou à la retraite")
    assert line["clôture"] == "plus joignable"


# 00:30 on 1 December in Paris, still 30 November in UTC.
PARIS_DECEMBER_FIRST = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)


def test_a_request_made_just_after_paris_midnight_is_in_the_export_of_the_paris_day(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(territory, persons=[("Minuit", "Passé", None)], created_at=PARIS_DECEMBER_FIRST)
    december = _csv(_download(client, du="2026-12-01", au="2026-12-31").data)
    november = _csv(_download(client, du="2026-11-01", au="2026-11-30").data)
    assert len(november) == 1  # the header only
    line = dict(zip(december[0], december[1], strict=True))
    assert line["noms"] == "Minuit Passé"
    assert line["date de la demande"] == "2026-12-01T00:30+01:00"


def test_a_summer_request_reads_in_paris_summer_time_in_csv_and_xlsx(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(territory, created_at=datetime(2026, 7, 14, 22, 5, tzinfo=UTC))
    make_request(territory, created_at=datetime(2026, 10, 25, 0, 59, tzinfo=UTC))  # before 3:00
    make_request(territory, created_at=datetime(2026, 10, 25, 1, 0, tzinfo=UTC))  # winter again
    rows = _csv(_download(client).data)
    dates = [row[rows[0].index("date de la demande")] for row in rows[1:]]
    assert dates == ["2026-07-15T00:05+02:00", "2026-10-25T02:59+02:00", "2026-10-25T02:00+01:00"]
    sheet = load_workbook(io.BytesIO(_download(client, fmt="xlsx").data)).active
    assert [row[1].value for row in sheet.iter_rows(min_row=2)] == dates


def test_the_pseudonymised_export_gives_the_paris_day_of_the_request(
    client, coordinator, make_request
):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    make_request(territory, created_at=PARIS_DECEMBER_FIRST)
    make_request(territory, created_at=datetime(2026, 6, 30, 22, 10, tzinfo=UTC))  # 1 July
    rows = _csv(_download(client, kind="pseudonymised").data)
    days = [row[rows[0].index("date de la demande")] for row in rows[1:]]
    assert days == ["2026-12-01", "2026-07-01"]


def test_the_message_log_gives_paris_times_and_follows_paris_days(client, coordinator, session):  # type: ignore[no-untyped-def]
    territory, _ = coordinator
    message = queue_message(
        session, territory_id=territory.id, channel=Channel.SMS, recipient="+33612345678",
        body="Bonjour", purpose="proposal", idempotency_key="k-midnight",
    )  # fmt: skip
    message.created_at = PARIS_DECEMBER_FIRST
    session.commit()
    december = _csv(_download(client, kind="messages", du="2026-12-01", au="2026-12-31").data)
    november = _csv(_download(client, kind="messages", du="2026-11-01", au="2026-11-30").data)
    assert [row[0] for row in december[1:]] == ["2026-12-01T00:30+01:00"]
    assert len(november) == 1
