"""Defects found walking through the doctor screens: SMS to landlines, demo cards, the census
round trip, impossible availability answers, reminder dates, invitations, dead links, page ids,
and the doctor's history in French."""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import (
    Accepting,
    Channel,
    Doctor,
    DoctorEvent,
    DoctorSite,
    LocationPrecision,
    Message,
    Request,
    Territory,
    User,
    VolunteerStatus,
    utcnow,
)
from orientation.services.demo import seed_demo
from orientation.services.doctor_invitations import NotInvitable, invite_doctor
from orientation.services.doctor_refresh import availability_link, send_reminders
from orientation.services.doctors import check_rpps, rpps_with_key
from tests.conftest import AuthActions

SECRET = "test-secret-" + "x" * 40
LANDLINE = "+33320820199"  # 03 20 82 01 99
MOBILE = "+33612345678"


def link_of(doctor: Doctor) -> str:
    return availability_link(doctor, "http://localhost", SECRET).removeprefix("http://localhost")


class _FormValues(HTMLParser):
    """What a browser posts from the form whose action is `action`, as the page shows it."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        if not self.inside:
            return
        if tag == "option" and self._select and "selected" in a:
            self.values.append((self._select, a.get("value", "")))
        if not a.get("name"):
            return
        if tag == "input" and a.get("type") in ("checkbox", "radio"):
            if "checked" in a:
                self.values.append((a["name"], a.get("value", "y")))
        elif tag == "input":
            self.values.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a["name"]
        elif tag == "textarea":
            self._textarea = a["name"]
            self.values.append((a["name"], ""))

    def handle_data(self, data: str) -> None:
        if self._textarea:
            name, text = self.values.pop()
            self.values.append((name, text + data))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_values(page: str, action: str) -> dict[str, Any]:
    parser = _FormValues(action)
    parser.feed(page)
    values: dict[str, Any] = {}
    for name, value in parser.values:
        values.setdefault(name, value)
    return values


def card(**fields: str) -> dict[str, str]:
    """The coordinator's doctor card as typed."""
    values = {
        "rpps": rpps_with_key("1000012345"),
        "last_name": "Lefèvre",
        "first_name": "Hélène",
        "practice_address": "12 rue de Lille",
        "postal_code": "59280",
        "commune": "Armentières",
        "phone": "03 20 82 01 99",
        "email": "",
        "preferred_channel": "email",
        "volunteer_status": "volunteer",
        "accepting": "yes",
        "capacity_left": "3",
        "accepts_under_6": "y",
    }
    values.update(fields)
    return values


@pytest.fixture
def territory(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory(name="CPTS Lys")


@pytest.fixture
def coordinator(auth: AuthActions, territory: Territory, make_user: Callable[..., User]) -> User:
    user = make_user(territory)
    auth.login(user)
    return user


def doctor_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Doctor)) or 0


# 1. SMS to landlines


def test_the_card_refuses_sms_to_a_landline_on_the_channel_field_and_keeps_the_rest(
    client: FlaskClient, session: Session, coordinator: User
) -> None:
    response = client.post("/espace/medecins/nouveau", data=card(preferred_channel="sms"))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="preferred_channel-error"' in page
    assert "Pour recevoir des SMS, indiquez un numéro de portable." in page
    assert 'value="12 rue de Lille"' in page  # the rest is kept
    assert doctor_count(session) == 0

    saved = client.post(
        "/espace/medecins/nouveau", data=card(preferred_channel="sms", phone="06 12 34 56 78")
    )
    assert saved.status_code == 302
    assert session.scalars(select(Doctor.preferred_channel)).one() == "sms"


def _ask(client: FlaskClient, request: Request, doctor: Doctor) -> Any:
    return client.post(
        f"/espace/demandes/{request.id}/solliciter",
        data={"mode": "chosen", "doctor_ids": [str(doctor.id)]},
    )


def test_asking_a_doctor_who_prefers_sms_on_a_landline_writes_by_email(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    coordinator: User,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    request = make_request(territory, lat=50.688, lon=2.88)
    doctor = make_doctor(territory, phone=LANDLINE, email="dr@example.org", preferred_channel="sms")
    assert _ask(client, request, doctor).status_code == 302
    message = session.scalars(select(Message).where(Message.doctor_id == doctor.id)).one()
    assert (message.channel, message.recipient) == (Channel.EMAIL, "dr@example.org")


def test_a_doctor_reachable_only_on_a_landline_is_not_asked_and_the_coordinator_sees_why(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    coordinator: User,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    request = make_request(territory, lat=50.688, lon=2.88)
    doctor = make_doctor(territory, phone=LANDLINE, preferred_channel="sms")
    response = _ask(client, request, doctor)
    page = client.get(response.location).get_data(as_text=True)
    assert "03 20 82 01 99 n&#39;est pas un portable" in page
    assert session.scalars(select(Message)).all() == []


def test_reminders_and_invitations_never_go_by_sms_to_a_landline(
    session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    now = utcnow()
    old = now - timedelta(days=170)
    with_email = make_doctor(
        territory, phone=LANDLINE, email="a@example.org", preferred_channel="sms", confirmed_at=old
    )
    landline_only = make_doctor(
        territory, phone=LANDLINE, preferred_channel="sms", confirmed_at=old
    )
    report = send_reminders(session, territory, now, link_of)
    assert (report.first, report.no_contact) == (1, 1)
    sent = session.scalars(select(Message)).one()
    assert (sent.doctor_id, sent.channel) == (with_email.id, Channel.EMAIL)

    landline_only.volunteer_status = VolunteerStatus.NOT_YET
    with pytest.raises(NotInvitable, match="n'est pas un portable"):
        invite_doctor(session, territory, landline_only, now, link_of, actor_label="test")


# 2. Demo doctors


def _login(client: FlaskClient, email: str, password: str) -> None:
    response = client.post("/connexion", data={"email": email, "password": password})
    assert response.status_code == 302


def test_every_demo_doctor_has_a_valid_rpps_saves_unchanged_and_round_trips(
    client: FlaskClient, session: Session
) -> None:
    logins = seed_demo(session, gazetteer(), utcnow())
    session.commit()
    doctors = session.scalars(select(Doctor).order_by(Doctor.id)).all()
    assert all(check_rpps(d.rpps) == d.rpps for d in doctors)
    for slug in ("lys-armentieres", "grand-lille"):
        login = next(x for x in logins if x.email == f"coordination@{slug}.demo")
        _login(client, login.email, login.password)
        territory = session.scalars(select(Territory).where(Territory.slug == slug)).one()
        for doctor in (d for d in doctors if d.territory_id == territory.id):
            url = f"/espace/medecins/{doctor.id}"
            values = form_values(client.get(url).get_data(as_text=True), url)
            response = client.post(url, data=values)
            errors = re.findall(
                r'class="error" id="([^"]+)">([^<]+)', response.get_data(as_text=True)
            )
            assert response.status_code == 302, (doctor.id, errors)
        before = _snapshot(session)
        _round_trip(client)
        assert _snapshot(session) == before, "the demo's export imports back unchanged"
        client.post("/deconnexion")
    updated = session.scalars(
        select(DoctorEvent.changes).where(DoctorEvent.action == "updated")
    ).all()
    assert Counter(name for changes in updated for name in changes) == {}


# 3. The census round trip


def _snapshot(session: Session) -> list[tuple[Any, ...]]:
    """Every column of every doctor and secondary site."""
    session.expire_all()
    rows: list[tuple[Any, ...]] = []
    for model in (Doctor, DoctorSite):
        columns = list(model.__table__.columns)
        rows += [
            tuple(getattr(row, c.key) for c in columns)
            for row in session.scalars(select(model).order_by(model.id))
        ]
    return rows


def _round_trip(client: FlaskClient) -> None:
    export = client.get("/espace/medecins/export.csv").get_data()
    response = client.post(
        "/espace/medecins/import",
        data={"file": (io.BytesIO(export), "medecins.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200


def test_importing_the_export_back_changes_nothing(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    coordinator: User,
    make_doctor: Callable[..., Doctor],
) -> None:
    now = utcnow()
    not_yet = make_doctor(
        territory,
        rpps=rpps_with_key("1000000001"),
        email="n@example.org",
        volunteer_status=VolunteerStatus.NOT_YET,
        accepting=Accepting.NO,
        capacity_left=0,
        confirmed_at=None,
    )
    make_doctor(
        territory,
        rpps=rpps_with_key("1000000002"),
        phone=MOBILE,
        email="s@example.org",
        preferred_channel="sms",
        home_visits=True,
        home_visit_radius_km=4.5,
        coordinator_note="Appeler le matin",
    )
    make_doctor(
        territory,
        rpps=rpps_with_key("1000000003"),
        phone=MOBILE,
        volunteer_status=VolunteerStatus.DECLINED,
        accepting=Accepting.NO,
        capacity_left=0,
    )
    paused = make_doctor(
        territory,
        rpps=rpps_with_key("1000000004"),
        accepting=Accepting.PAUSED,
        paused_until=date.today() + timedelta(days=30),
        capacity_left=0,
        lat=50.6901,
        lon=2.8823,
        location_precision=LocationPrecision.MANUAL,
    )
    session.add(
        DoctorSite(
            territory_id=territory.id,
            doctor_id=paused.id,
            address="3 place du Marché",
            postal_code="59280",
            commune_insee="59017",
            lat=gazetteer().by_insee["59017"].lat,
            lon=gazetteer().by_insee["59017"].lon,
            location_precision=LocationPrecision.COMMUNE,
            created_at=now,
        )
    )
    session.commit()
    before = _snapshot(session)
    events = session.scalar(select(func.count()).select_from(DoctorEvent))

    _round_trip(client)
    assert _snapshot(session) == before
    assert session.scalar(select(func.count()).select_from(DoctorEvent)) == events
    page = client.get(f"/espace/medecins/{not_yet.id}").get_data(as_text=True)
    assert "Inviter à devenir volontaire" in page


def test_a_not_yet_doctor_who_answers_yes_in_the_census_becomes_a_volunteer(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    coordinator: User,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(
        territory,
        rpps=rpps_with_key("1000000001"),
        volunteer_status=VolunteerStatus.NOT_YET,
        accepting=Accepting.NO,
        capacity_left=0,
        confirmed_at=None,
    )
    text = (
        "RPPS;Nom;Code postal;Commune;Accepte de nouveaux patients;Combien\r\n"
        f"{doctor.rpps};{doctor.last_name};59280;Armentières;oui;4\r\n"
    )
    client.post(
        "/espace/medecins/import",
        data={"file": (io.BytesIO(text.encode()), "recensement.csv")},
        content_type="multipart/form-data",
    )
    session.expire_all()
    saved = session.get(Doctor, doctor.id)
    assert saved is not None
    assert (saved.volunteer_status, saved.accepting, saved.capacity_left) == (
        VolunteerStatus.VOLUNTEER,
        Accepting.YES,
        4,
    )


# 4. Impossible availability answers


@pytest.mark.parametrize(
    ("answer", "field", "message"),
    [
        (
            {"accepting": "paused", "paused_until": "2025-01-01"},
            "paused_until",
            "La fin de la pause doit être une date à venir.",
        ),
        ({"accepting": "yes", "capacity_left": ""}, "capacity_left", "(au moins 1)"),
        ({"accepting": "yes", "capacity_left": "0"}, "capacity_left", "(au moins 1)"),
        (
            {"accepting": "yes", "capacity_left": "2", "home_visits": "y"},
            "home_visit_radius_km",
            "Indiquez le rayon des visites à domicile (plus de 0 km).",
        ),
    ],
)
def test_the_doctor_s_impossible_answer_is_refused_on_its_field_and_the_link_still_works(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_doctor: Callable[..., Doctor],
    answer: dict[str, str],
    field: str,
    message: str,
) -> None:
    doctor = make_doctor(territory)
    url = link_of(doctor)
    response = client.post(url, data=answer)
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="{field}-error"' in page and message in page.replace("&#39;", "'")
    session.expire_all()
    assert session.get(Doctor, doctor.id).link_version == 0  # type: ignore[union-attr]
    later = (date.today() + timedelta(days=60)).isoformat()
    fixed = client.post(url, data={"accepting": "paused", "paused_until": later})
    assert "Merci, c'est enregistré" in fixed.get_data(as_text=True)


def test_the_coordinator_card_refuses_a_past_pause_a_zero_count_and_a_zero_radius(
    client: FlaskClient, session: Session, coordinator: User
) -> None:
    response = client.post(
        "/espace/medecins/nouveau",
        data=card(capacity_left="0", home_visits="y", home_visit_radius_km="0"),
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="capacity_left-error"' in page and 'id="home_visit_radius_km-error"' in page
    past = client.post(
        "/espace/medecins/nouveau", data=card(accepting="paused", paused_until="2025-01-01")
    )
    assert 'id="paused_until-error"' in past.get_data(as_text=True)
    assert doctor_count(session) == 0


def test_a_card_whose_places_are_all_taken_still_saves_unchanged(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    coordinator: User,
    make_doctor: Callable[..., Doctor],
) -> None:
    # Patients accepted through the links used up the places; a pause has since ended.
    full = make_doctor(territory, rpps=rpps_with_key("1000000001"), capacity_left=0)
    ended = make_doctor(
        territory,
        rpps=rpps_with_key("1000000002"),
        accepting=Accepting.PAUSED,
        paused_until=date.today() - timedelta(days=3),
        capacity_left=0,
    )
    for doctor in (full, ended):
        url = f"/espace/medecins/{doctor.id}"
        values = form_values(client.get(url).get_data(as_text=True), url)
        response = client.post(url, data=values)
        errors = re.findall(r'class="error" id="([^"]+)">([^<]+)', response.get_data(as_text=True))
        assert response.status_code == 302, errors


def test_a_hand_placed_doctor_stays_where_placed_when_the_card_is_saved(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    coordinator: User,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(
        territory,
        rpps=rpps_with_key("1000000001"),
        lat=50.6901,
        lon=2.8823,
        location_precision=LocationPrecision.MANUAL,
    )
    url = f"/espace/medecins/{doctor.id}"
    values = form_values(client.get(url).get_data(as_text=True), url)
    assert client.post(url, data=values | {"phone": "06 12 34 56 78"}).status_code == 302
    session.refresh(doctor)
    assert (doctor.lat, doctor.lon, doctor.location_precision) == (
        50.6901,
        2.8823,
        LocationPrecision.MANUAL,
    )


# 5. The reminder's date and subject


def test_an_overdue_reminder_says_as_soon_as_possible_and_never_a_past_date(
    session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    now = datetime(2026, 12, 2, 8, 15, tzinfo=utcnow().tzinfo)
    overdue = make_doctor(
        territory, email="late@example.org", confirmed_at=now - timedelta(days=230)
    )
    soon = make_doctor(territory, email="soon@example.org", confirmed_at=now - timedelta(days=170))
    send_reminders(session, territory, now, link_of)
    by_doctor = {m.doctor_id: m for m in session.scalars(select(Message))}
    late, due = by_doctor[overdue.id], by_doctor[soon.id]
    assert late.subject.startswith("Vos disponibilités")
    assert "dès que possible" in late.body and "avant le" not in late.body
    deadline = re.search(r"avant le (\d\d/\d\d/\d{4})", due.body)
    assert deadline is not None
    assert datetime.strptime(deadline.group(1), "%d/%m/%Y").date() > now.date()


# 6. The invitation has no answer chosen in advance


def test_the_invitation_pre_selects_no_answer_and_asks_for_one(
    client: FlaskClient, session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(
        territory,
        volunteer_status=VolunteerStatus.NOT_YET,
        accepting=Accepting.NO,
        capacity_left=0,
        confirmed_at=None,
    )
    page = client.get(link_of(doctor)).get_data(as_text=True)
    assert not re.search(r'name="accepting"[^>]*checked', page)
    response = client.post(link_of(doctor), data={})
    assert response.status_code == 422
    assert "Choisissez une réponse." in response.get_data(as_text=True)
    session.expire_all()
    saved = session.get(Doctor, doctor.id)
    assert saved is not None and saved.volunteer_status is VolunteerStatus.NOT_YET


# 7. A deactivated doctor's link


def test_a_deactivated_doctor_s_link_says_the_record_is_no_longer_active_and_whom_to_call(
    client: FlaskClient, session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(territory, active=False)
    response = client.get(link_of(doctor))
    page = response.get_data(as_text=True).replace("&#39;", "'")
    assert response.status_code == 410
    assert "n'est plus active auprès de CPTS Lys" in page
    assert "incomplet" not in page
    assert territory.contact_phone in page


# 8. Unique ids on the doctor's page


def test_the_doctor_page_has_unique_ids_and_each_label_points_to_its_own_field(
    client: FlaskClient,
    territory: Territory,
    coordinator: User,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(territory)
    page = client.get(f"/espace/medecins/{doctor.id}").get_data(as_text=True)
    ids = Counter(re.findall(r'\sid="([^"]+)"', page))
    assert [i for i, n in ids.items() if n > 1] == []
    assert '<label for="place-lat">' in page and 'id="place-lat" name="lat"' in page
    assert '<label for="lat">' in page and 'id="lat" name="lat"' in page


# 9. The history in French


def test_the_history_names_events_and_fields_in_french_and_bulk_only_for_bulk(
    client: FlaskClient, session: Session, coordinator: User
) -> None:
    client.post(
        "/espace/medecins/nouveau",
        data=card(email="dr@example.org", volunteer_status="not_yet", accepting="no"),
    )
    doctor = session.scalars(select(Doctor)).one()
    client.post(f"/espace/medecins/{doctor.id}/inviter")
    page = client.get(f"/espace/medecins/{doctor.id}").get_data(as_text=True)
    assert "Fiche créée (coordination, Test User) : prénom, nom, adresse du cabinet" in page
    assert "Invitation envoyée par e-mail (coordination, Test User)" in page
    assert "bulk" not in page and "groupée" not in page and "created" not in page
