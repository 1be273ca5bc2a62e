"""Inviting 'not yet volunteer' GPs: one or all, once a day, yes makes a volunteer, no is final."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Accepting,
    Channel,
    Doctor,
    DoctorEvent,
    Message,
    Territory,
    User,
    VolunteerStatus,
    utcnow,
)
from orientation.services.doctor_invitations import NotInvitable, invite_all, invite_doctor
from orientation.services.doctor_refresh import availability_link
from orientation.services.doctors import doctor_points
from tests.conftest import AuthActions

SECRET = "test-secret-" + "x" * 40


def link_of(doctor: Doctor) -> str:
    return availability_link(doctor, "http://localhost", SECRET).removeprefix("http://localhost")


@pytest.fixture
def territory(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory(name="CPTS Lys")


@pytest.fixture
def not_yet(make_doctor: Callable[..., Doctor]) -> Callable[..., Doctor]:
    def _make(territory: Territory, **fields: object) -> Doctor:
        values: dict[str, object] = {
            "volunteer_status": VolunteerStatus.NOT_YET,
            "accepting": Accepting.NO,
            "capacity_left": 0,
            "confirmed_at": None,
        }
        return make_doctor(territory, **(values | fields))

    return _make


def messages(session: Session) -> list[Message]:
    session.expire_all()
    return list(session.scalars(select(Message).order_by(Message.id)))


def test_the_bulk_invite_writes_once_a_day_to_each_not_yet_doctor_with_a_contact(
    session: Session,
    territory: Territory,
    not_yet: Callable[..., Doctor],
    make_doctor: Callable[..., Doctor],
) -> None:
    by_mail = not_yet(territory, email="a@example.org")
    by_sms = not_yet(territory, phone="+33612345678", preferred_channel="sms")
    not_yet(territory)  # no contact
    not_yet(territory, email="d@example.org", volunteer_status=VolunteerStatus.DECLINED)
    make_doctor(territory, email="v@example.org")  # already a volunteer
    # 8:00 UTC is morning in Paris, so three hours later is the same Paris day whenever the
    # suite runs (from utcnow(), a run after 20:00 UTC crossed Paris midnight).
    now = utcnow().replace(hour=8, minute=0, second=0, microsecond=0)

    first = invite_all(session, territory, now, link_of, actor_label="Coord")
    session.commit()
    assert (first.sent, first.already_today, first.no_contact) == (2, 0, 1)
    sent = messages(session)
    assert [(m.doctor_id, m.channel, m.purpose) for m in sent] == [
        (by_mail.id, Channel.EMAIL, "doctor_invitation"),
        (by_sms.id, Channel.SMS, "doctor_invitation"),
    ]
    assert "/medecin/" in sent[0].body and "médecin traitant" in sent[0].subject
    assert "/medecin/" in sent[1].body

    again = invite_all(session, territory, now + timedelta(hours=3), link_of, actor_label="C")
    session.commit()
    assert (again.sent, again.already_today) == (0, 2)
    assert len(messages(session)) == 2
    tomorrow = invite_all(session, territory, now + timedelta(days=1), link_of, actor_label="Coord")
    session.commit()
    assert (tomorrow.sent, tomorrow.already_today) == (2, 0)  # a new Paris day, a new invite
    events = session.scalars(select(DoctorEvent).where(DoctorEvent.action == "invited")).all()
    assert sorted(e.doctor_id for e in events) == sorted([by_mail.id, by_sms.id] * 2)
    assert all(e.source == "coordinator" and e.actor_label == "Coord" for e in events)


def test_one_doctor_is_invited_from_their_page_even_after_declining_but_not_a_volunteer(
    session: Session,
    territory: Territory,
    not_yet: Callable[..., Doctor],
    make_doctor: Callable[..., Doctor],
) -> None:
    declined = not_yet(territory, email="d@example.org", volunteer_status=VolunteerStatus.DECLINED)
    now = utcnow()
    assert invite_doctor(session, territory, declined, now, link_of, actor_label="C")
    assert not invite_doctor(session, territory, declined, now, link_of, actor_label="C")
    session.commit()
    assert len(messages(session)) == 1
    with pytest.raises(NotInvitable, match="déjà volontaire"):
        invite_doctor(session, territory, make_doctor(territory), now, link_of, actor_label="C")
    with pytest.raises(NotInvitable, match="ni e-mail ni téléphone"):
        invite_doctor(session, territory, not_yet(territory), now, link_of, actor_label="C")


def test_a_doctor_who_says_yes_becomes_a_volunteer_with_their_availability(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    not_yet: Callable[..., Doctor],
) -> None:
    doctor = not_yet(territory, email="a@example.org")
    invite_doctor(session, territory, doctor, utcnow(), link_of, actor_label="C")
    session.commit()
    url = link_of(doctor)
    page = client.get(url).get_data(as_text=True)
    assert "Accepteriez-vous de nouveaux patients ?" in page
    done = client.post(
        url,
        data={
            "accepting": "yes",
            "capacity_left": "3",
            "accepts_under_6": "y",
            "accepts_ald_followup": "y",
        },
    )
    assert done.status_code == 200
    assert "Vous acceptez de nouveaux patients (3" in done.get_data(as_text=True)
    session.expire_all()
    doctor = session.get(Doctor, doctor.id)
    assert doctor is not None
    assert doctor.volunteer_status is VolunteerStatus.VOLUNTEER
    assert (doctor.accepting, doctor.capacity_left, doctor.accepts_elderly_dependent) == (
        Accepting.YES,
        3,
        False,
    )
    assert doctor.confirmed_at is not None
    point = next(p for p in doctor_points(session, territory, utcnow()) if p.id == doctor.id)
    assert point.accepting and not point.stale
    # The link worked once.
    assert client.post(url, data={"accepting": "no"}).status_code == 410


def test_a_doctor_who_says_no_is_recorded_and_never_invited_again_by_the_bulk_action(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    not_yet: Callable[..., Doctor],
) -> None:
    doctor = not_yet(territory, email="a@example.org")
    start = utcnow()
    invite_all(session, territory, start, link_of, actor_label="C")
    session.commit()
    done = client.post(link_of(doctor), data={"accepting": "no"})
    assert "ne vous sollicitera plus" in done.get_data(as_text=True)
    session.expire_all()
    doctor = session.get(Doctor, doctor.id)
    assert doctor is not None and doctor.volunteer_status is VolunteerStatus.DECLINED
    event = session.scalars(select(DoctorEvent).where(DoctorEvent.action == "confirmed")).one()
    assert event.source == "doctor_link"
    assert event.changes["volunteer_status"] == ["not_yet", "declined"]
    later = invite_all(session, territory, start + timedelta(days=30), link_of, actor_label="C")
    assert later.sent == 0 and len(messages(session)) == 1


def test_the_coordinator_invites_from_the_list_and_from_the_doctors_page(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    territory: Territory,
    make_user: Callable[..., User],
    not_yet: Callable[..., Doctor],
) -> None:
    auth.login(make_user(territory))
    first = not_yet(territory, email="a@example.org")
    not_yet(territory, email="b@example.org")
    listing = client.get("/espace/medecins").get_data(as_text=True)
    assert "2 médecins « pas encore volontaires » ont un e-mail ou un téléphone" in listing

    page = client.post(f"/espace/medecins/{first.id}/inviter", follow_redirects=True)
    assert f"Invitation envoyée à {first.display_name}." in page.get_data(as_text=True)
    bulk = client.post("/espace/medecins/inviter", follow_redirects=True).get_data(as_text=True)
    assert "1 invitation(s) envoyée(s) ; 1 déjà invité(s) aujourd&#39;hui" in bulk
    again = client.post("/espace/medecins/inviter", follow_redirects=True).get_data(as_text=True)
    assert "0 invitation(s) envoyée(s) ; 2 déjà invité(s)" in again
    assert len(messages(session)) == 2
