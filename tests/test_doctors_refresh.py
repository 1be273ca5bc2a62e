"""The six-month refresh: reminders once per campaign, the doctor's signed link, stale doctors."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Accepting,
    Channel,
    Doctor,
    DoctorEvent,
    DoctorReminder,
    Message,
    Territory,
    User,
    utcnow,
)
from orientation import Settings
from orientation.services.doctor_refresh import availability_link, send_reminders
from orientation.services.doctors import doctor_points
from tests.conftest import AuthActions

SECRET = "test-secret-" + "x" * 40


def link_of(doctor: Doctor) -> str:
    return availability_link(doctor, "http://localhost", SECRET).removeprefix("http://localhost")


@pytest.fixture
def territory(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory(name="CPTS Lys")


def test_the_reminder_goes_once_per_due_doctor_per_campaign_even_when_run_twice(
    runner: FlaskCliRunner,
    session: Session,
    territory: Territory,
    make_doctor: Callable[..., Doctor],
) -> None:
    now = utcnow()
    due_soon = make_doctor(
        territory, email="due@example.org", confirmed_at=now - timedelta(days=170)
    )
    by_sms = make_doctor(
        territory,
        phone="+33612345678",
        preferred_channel="sms",
        confirmed_at=now - timedelta(days=175),
    )
    make_doctor(territory, email="fresh@example.org", confirmed_at=now - timedelta(days=20))

    first = runner.invoke(args=["doctors", "remind"])
    assert first.exit_code == 0, first.output
    assert "2 first reminder(s)" in first.output
    second = runner.invoke(args=["doctors", "remind"])
    assert "0 first reminder(s), 0 second reminder(s)" in second.output

    messages = session.scalars(select(Message).order_by(Message.doctor_id)).all()
    assert [(m.doctor_id, m.channel) for m in messages] == [
        (due_soon.id, Channel.EMAIL),
        (by_sms.id, Channel.SMS),
    ]
    assert messages[0].subject.startswith("Vos disponibilités")
    assert "http://localhost/medecin/" in messages[0].body
    assert re.search(r"http://localhost/medecin/\S+", messages[1].body)


def test_a_second_reminder_follows_after_n_days_then_nothing_more(
    session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    start = utcnow()
    doctor = make_doctor(territory, email="d@example.org", confirmed_at=start - timedelta(days=170))

    def remind(days_later: int) -> tuple[int, int]:
        report = send_reminders(
            session, territory, start + timedelta(days=days_later), link_of, second_after_days=14
        )
        session.commit()
        return report.first, report.second

    assert remind(0) == (1, 0)
    assert remind(7) == (0, 0)
    assert remind(14) == (0, 1)
    assert remind(20) == (0, 0)
    keys = session.scalars(select(Message.idempotency_key).order_by(Message.id)).all()
    assert len(keys) == 2 and all(str(doctor.id) in key for key in keys)


def test_doctors_past_the_period_are_marked_stale_and_leave_the_ranking(
    session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    now = utcnow()
    stale = make_doctor(territory, email="s@example.org", confirmed_at=now - timedelta(days=200))
    report = send_reminders(session, territory, now, link_of)
    session.commit()
    assert report.newly_stale == 1
    reminder = session.scalars(select(DoctorReminder)).one()
    assert reminder.stale_at is not None
    assert session.scalars(select(DoctorEvent.action)).all() == ["stale"]
    point = next(p for p in doctor_points(session, territory, now) if p.id == stale.id)
    assert point.stale


def test_the_doctor_confirms_through_the_link_once_and_the_link_then_dies(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_doctor: Callable[..., Doctor],
) -> None:
    now = utcnow()
    doctor = make_doctor(
        territory, email="d@example.org", confirmed_at=now - timedelta(days=170), capacity_left=1
    )
    send_reminders(session, territory, now, link_of)
    session.commit()
    url = link_of(doctor)

    page = client.get(url)
    assert page.status_code == 200
    assert "Vos disponibilités pour de nouveaux patients" in page.get_data(as_text=True)
    session.expire_all()
    assert session.scalars(select(DoctorReminder)).one().opened_at is not None

    done = client.post(
        url,
        data={
            "accepting": "yes",
            "capacity_left": "6",
            "accepts_under_6": "y",
            "home_visits": "y",
            "home_visit_radius_km": "3",
        },
    )
    assert done.status_code == 200
    assert "Merci, c'est enregistré" in done.get_data(as_text=True)
    session.expire_all()
    saved = session.get(Doctor, doctor.id)
    assert saved is not None
    assert (saved.capacity_left, saved.home_visit_radius_km) == (6, 3.0)
    assert not saved.accepts_elderly_dependent
    assert saved.confirmed_at is not None and saved.confirmed_at > now - timedelta(minutes=1)
    event = session.scalars(select(DoctorEvent).where(DoctorEvent.action == "confirmed")).one()
    assert event.source == "doctor_link"
    assert session.scalars(select(DoctorReminder)).one().confirmed_at is not None

    replay = client.post(url, data={"accepting": "no"})
    assert replay.status_code == 410
    assert "Ce lien a déjà servi" in replay.get_data(as_text=True)
    session.expire_all()
    assert session.get(Doctor, doctor.id).accepting is Accepting.YES  # type: ignore[union-attr]


def test_i_no_longer_take_new_patients(
    client: FlaskClient, session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(territory)
    response = client.post(link_of(doctor), data={"accepting": "no", "capacity_left": "3"})
    assert "ne prenez plus de nouveaux patients" in response.get_data(as_text=True)
    session.expire_all()
    saved = session.get(Doctor, doctor.id)
    assert saved is not None and saved.accepting is Accepting.NO and saved.capacity_left == 0
    point = next(p for p in doctor_points(session, territory, utcnow()) if p.id == doctor.id)
    assert not point.accepting


def test_a_pause_without_a_date_is_refused_on_its_field(
    client: FlaskClient, session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(territory)
    response = client.post(link_of(doctor), data={"accepting": "paused", "capacity_left": "2"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Indiquez jusqu&#39;à quelle date" in page
    assert 'id="paused_until-error"' in page
    session.expire_all()
    assert session.get(Doctor, doctor.id).link_version == 0  # type: ignore[union-attr]


def test_a_tampered_link_shows_a_clear_page_and_changes_nothing(
    client: FlaskClient, session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(territory)
    url = link_of(doctor)
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    response = client.post(tampered, data={"accepting": "no"})
    assert response.status_code == 404
    assert "Ce lien n'est pas valide" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Doctor, doctor.id).accepting is Accepting.YES  # type: ignore[union-attr]


class SignedIn2020(TimestampSigner):
    def get_timestamp(self) -> int:
        return 1_600_000_000


def test_an_expired_link_shows_a_clear_page_and_changes_nothing(
    app: Flask,
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_doctor: Callable[..., Doctor],
) -> None:
    doctor = make_doctor(territory)
    old = URLSafeTimedSerializer(
        SECRET, salt="orientation-link:doctor-availability", signer=SignedIn2020
    )
    token = old.dumps([doctor.id, 0, ""])
    response = client.post(f"/medecin/{token}", data={"accepting": "no"})
    assert response.status_code == 410
    assert "Ce lien a expiré" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Doctor, doctor.id).accepting is Accepting.YES  # type: ignore[union-attr]


def test_a_link_made_for_another_purpose_is_refused(
    client: FlaskClient, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(territory)
    other = URLSafeTimedSerializer(SECRET, salt="orientation-link:doctor-answer")
    response = client.get(f"/medecin/{other.dumps([doctor.id, 0, ''])}")
    assert response.status_code == 404


def test_the_coordinator_sees_the_campaign_progress(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    territory: Territory,
    make_doctor: Callable[..., Doctor],
    make_user: Callable[..., User],
) -> None:
    now = utcnow()
    for n in range(3):
        make_doctor(territory, email=f"d{n}@example.org", confirmed_at=now - timedelta(days=175))
    make_doctor(territory, email="old@example.org", confirmed_at=now - timedelta(days=300))
    send_reminders(session, territory, now, link_of)
    session.commit()
    first = session.scalars(select(Doctor).order_by(Doctor.id)).first()
    assert first is not None
    client.get(link_of(first))
    auth.login(make_user(territory))
    page = client.get("/espace/medecins").get_data(as_text=True)
    assert "<strong>4</strong> rappels envoyés" in page
    assert "<strong>1</strong> liens ouverts" in page
    assert "<strong>0</strong> confirmés" in page
    assert "<strong>1</strong> à confirmer" in page


def test_an_answer_refused_with_an_expired_session_comes_back_filled_in(
    settings: Settings, session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    from orientation import create_app

    doctor = make_doctor(territory, capacity_left=1)
    app = create_app(settings.with_overrides(extra={"WTF_CSRF_ENABLED": True}))
    client = app.test_client()
    answer = {"accepting": "yes", "capacity_left": "4", "home_visits": "y",
              "home_visit_radius_km": "7"}  # fmt: skip
    # Opened on Monday, sent on Tuesday from a browser that has forgotten its session.
    refused = client.post(link_of(doctor), data={**answer, "csrf_token": "stale"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Le formulaire a expiré" in page and "Rien n'est encore enregistré" in page
    assert 'value="4"' in page and 'value="7"' in page
    session.expire_all()
    assert session.get(Doctor, doctor.id).capacity_left == 1  # type: ignore[union-attr]
    fresh = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert fresh is not None
    done = client.post(link_of(doctor), data={**answer, "csrf_token": fresh.group(1)})
    app.extensions["orientation.engine"].dispose()
    assert "Merci, c'est enregistré" in done.get_data(as_text=True)
    session.expire_all()
    assert session.get(Doctor, doctor.id).capacity_left == 4  # type: ignore[union-attr]
