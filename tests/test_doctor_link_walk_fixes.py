"""Fixes from a walk through the doctors' links: an accept after the patient found a doctor
takes no place and says why, places come back to doctors not chosen, a replayed answer link
says which answer, an expired link names the CPTS, a pause keeps its places, and the
home-visit radius takes a French decimal comma."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    Accepting,
    ContactStatus,
    Doctor,
    DoctorContact,
    DoctorEvent,
    Request,
    Status,
    Territory,
    utcnow,
)
from orientation.links import LinkSigner
from orientation.services.doctor_availability import is_accepting
from orientation.services.doctor_contacts import Links, release_unchosen_places
from orientation.services.doctor_refresh import availability_link
from orientation.services.doctors import doctor_points
from orientation.services.proposal import close_request, mark_oriented

SECRET = "test-secret-" + "x" * 40
LINKS = Links(LinkSigner(SECRET), "http://localhost")


def _answer_url(contact: DoctorContact, answer: str = "accept") -> str:
    return LINKS.doctor_answer(contact.id, answer).removeprefix("http://localhost")


def _contact(session: Session, request: Request, doctor: Doctor, **kwargs: object) -> DoctorContact:
    contact = DoctorContact(
        territory_id=request.territory_id, request_id=request.id, doctor_id=doctor.id, **kwargs
    )
    session.add(contact)
    session.commit()
    return contact


@pytest.fixture
def territory(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory(name="CPTS Lys")


# 1. An accept once the patient found a doctor, or the request is over.


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (Status.ORIENTED, "ce patient a déjà trouvé un médecin"),
        (Status.CLOSED, "cette demande est close"),
        (Status.WITHDRAWN, "cette demande est close"),
    ],
)
def test_an_accept_on_a_settled_request_says_so_and_takes_no_place(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
    status: Status,
    said: str,
) -> None:
    request = make_request(territory, Status.DOCTORS_CONTACTED)
    doctor = make_doctor(territory, capacity_left=2)
    contact = _contact(session, request, doctor)
    request.status = status
    session.commit()
    url = _answer_url(contact)
    assert said in client.get(url).get_data(as_text=True)
    page = client.post(url, data={"answer": "accept"}).get_data(as_text=True)
    assert said in page and "aucune de vos places n'est prise" in page
    assert "réservée" not in page
    session.expire_all()
    assert session.get(Doctor, doctor.id).capacity_left == 2  # type: ignore[union-attr]
    assert session.get(DoctorContact, contact.id).status is ContactStatus.ASKED  # type: ignore[union-attr]


def test_an_accept_while_a_proposal_is_out_does_not_promise_a_call(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    request = make_request(territory, Status.PROPOSED)
    doctor = make_doctor(territory, capacity_left=2)
    contact = _contact(session, request, doctor)
    page = client.post(_answer_url(contact), data={"answer": "accept"}).get_data(as_text=True)
    assert "Une proposition avec un autre médecin a déjà été envoyée" in page
    assert "il vous appellera" not in page
    assert "elle vous est rendue s'il choisit un autre médecin" in page


def test_orienting_with_one_doctor_gives_the_others_their_place_back_once(
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    request = make_request(territory, Status.PROPOSED)
    chosen = make_doctor(territory, capacity_left=1)
    other = make_doctor(territory, capacity_left=4)  # 5 before accepting this patient
    asked = make_doctor(territory, capacity_left=2)  # never answered: nothing was taken
    _contact(session, request, chosen, status=ContactStatus.ACCEPTED, position=1)
    _contact(session, request, other, status=ContactStatus.ACCEPTED, position=2)
    _contact(session, request, asked, position=3)
    mark_oriented(session, request, chosen.id, now=utcnow(), user_id=None)
    session.commit()
    session.expire_all()
    counts = [session.get(Doctor, d.id).capacity_left for d in (chosen, other, asked)]  # type: ignore[union-attr]
    assert counts == [1, 5, 2]
    again = session.get(Request, request.id)
    assert again is not None
    assert release_unchosen_places(session, again, utcnow()) == []  # not given twice
    session.commit()
    assert session.get(Doctor, other.id).capacity_left == 5  # type: ignore[union-attr]
    notes = [e.note for e in again.events if e.kind == "doctor_place_released"]
    assert notes == [f"Place rendue à {other.display_name} (fiche n° {other.id}) : non retenu."]


def test_closing_gives_every_accepting_doctor_their_place_back(
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
    make_user: Callable[..., object],
) -> None:
    request = make_request(territory, Status.PROPOSED)
    doctor = make_doctor(territory, capacity_left=0)
    _contact(session, request, doctor, status=ContactStatus.ACCEPTED)
    user = make_user(territory)
    close_request(session, request, "Patient déménagé", now=utcnow(), user_id=user.id)  # type: ignore[attr-defined]
    session.commit()
    session.expire_all()
    assert session.get(Doctor, doctor.id).capacity_left == 1  # type: ignore[union-attr]


def test_a_withdrawn_request_gives_places_back_when_asked_and_an_open_one_never(
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    request = make_request(territory, Status.PROPOSED)
    doctor = make_doctor(territory, capacity_left=0)
    _contact(session, request, doctor, status=ContactStatus.ACCEPTED)
    assert release_unchosen_places(session, request, utcnow()) == []  # still open
    request.status = Status.WITHDRAWN
    assert release_unchosen_places(session, request, utcnow()) == [doctor]
    session.commit()
    session.expire_all()
    assert session.get(Doctor, doctor.id).capacity_left == 1  # type: ignore[union-attr]


def test_oriented_without_a_named_doctor_gives_no_place_back(
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    request = make_request(territory, Status.ORIENTED)
    doctor = make_doctor(territory, capacity_left=0)
    _contact(session, request, doctor, status=ContactStatus.ACCEPTED)
    assert release_unchosen_places(session, request, utcnow()) == []


# 2. A replayed answer link says which answer; an anonymised request shows nothing of it.


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (ContactStatus.ACCEPTED, "Vous avez accepté ce patient le 03/03/2025 à 15:05"),
        (ContactStatus.DECLINED, "Vous avez décliné ce patient le 03/03/2025 à 15:05"),
    ],
)
def test_a_reopened_answer_link_says_which_answer_in_paris_time(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
    status: ContactStatus,
    said: str,
) -> None:
    request = make_request(territory, Status.DOCTORS_CONTACTED)
    doctor = make_doctor(territory)
    answered = datetime(2025, 3, 3, 14, 5, tzinfo=UTC)  # 15:05 in Paris (winter time)
    contact = _contact(session, request, doctor, status=status, answered_at=answered)
    assert said in client.get(_answer_url(contact)).get_data(as_text=True)
    replay = client.post(_answer_url(contact), data={"answer": "accept"})
    assert said in replay.get_data(as_text=True)


def test_an_anonymised_request_shows_nothing_of_the_patient(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    request = make_request(territory, Status.CLOSED, anonymised_at=utcnow())
    for person in request.persons:
        person.first_name = person.last_name = ""
    doctor = make_doctor(territory)
    contact = _contact(session, request, doctor, status=ContactStatus.CANCELLED)
    page = client.get(_answer_url(contact)).get_data(as_text=True)
    assert "Cette demande est close" in page
    for absent in ("Initiales", ". .", "Âge", "Commune", "Besoins", "Oui, je peux"):
        assert absent not in page


# 3. An expired link names the CPTS to call.


class SignedIn2020(TimestampSigner):
    def get_timestamp(self) -> int:
        return 1_600_000_000


def test_an_expired_availability_link_names_the_cpts_with_its_phone_and_email(
    client: FlaskClient, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(territory)
    old = URLSafeTimedSerializer(
        SECRET, salt="orientation-link:doctor-availability", signer=SignedIn2020
    )
    response = client.get(f"/medecin/{old.dumps([doctor.id, 0, ''])}")
    page = response.get_data(as_text=True)
    assert response.status_code == 410 and "Ce lien a expiré" in page
    assert "demandez-le à la coordination de CPTS Lys" in page
    assert territory.contact_phone in page and territory.contact_email in page


def test_an_expired_answer_link_names_the_cpts_with_its_phone_and_email(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    contact = _contact(session, make_request(territory, Status.DOCTORS_CONTACTED),
                       make_doctor(territory))  # fmt: skip
    url = _answer_url(contact)
    later = time.time() + 15 * 24 * 3600  # answer links live 14 days
    monkeypatch.setattr(time, "time", lambda: later)
    response = client.get(url)
    page = response.get_data(as_text=True)
    assert response.status_code == 410 and "a expiré" in page
    assert "CPTS Lys" in page
    assert territory.contact_phone in page and territory.contact_email in page
    tampered = client.get(url[:-3] + "abc").get_data(as_text=True)
    assert "CPTS Lys" not in tampered


# 4. A pause keeps the places given for after it; 5. the radius takes a French comma.


def _self_link(doctor: Doctor) -> str:
    return availability_link(doctor, "http://localhost", SECRET).removeprefix("http://localhost")


def test_a_pause_keeps_the_places_for_after_it_and_ranks_the_doctor_only_then(
    client: FlaskClient, session: Session, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(territory, capacity_left=2)
    until = date.today() + timedelta(days=30)
    done = client.post(
        _self_link(doctor),
        data={"accepting": "paused", "paused_until": until.isoformat(), "capacity_left": "2"},
    )
    page = done.get_data(as_text=True)
    assert done.status_code == 200, page
    assert f"pause jusqu'au {until:%d/%m/%Y}" in page
    assert "Ensuite, vous accepterez de nouveaux patients (2 d'ici" in page
    session.expire_all()
    saved = session.get(Doctor, doctor.id)
    assert saved is not None
    assert (saved.accepting, saved.capacity_left) == (Accepting.PAUSED, 2)
    event = session.scalars(select(DoctorEvent).where(DoctorEvent.action == "confirmed")).one()
    assert "capacity_left" not in event.changes
    point = next(p for p in doctor_points(session, territory, utcnow()) if p.id == doctor.id)
    assert not point.accepting  # the kept places do not rank a paused doctor
    assert is_accepting(saved, until)  # from the end of the pause, with its 2 places


@pytest.mark.parametrize("typed", ["7,5", "7.5", " 7,5 "])
def test_the_home_visit_radius_takes_a_french_decimal_comma_and_is_restated(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_doctor: Callable[..., Doctor],
    typed: str,
) -> None:
    doctor = make_doctor(territory)
    url = _self_link(doctor)
    form = client.get(url).get_data(as_text=True)
    field = re.search(r'<input[^>]*id="home_visit_radius_km"[^>]*>', form)
    assert field is not None
    assert 'type="text"' in field.group(0) and 'inputmode="decimal"' in field.group(0)
    done = client.post(
        url,
        data={"accepting": "yes", "capacity_left": "4", "home_visits": "y",
              "home_visit_radius_km": typed},
    )  # fmt: skip
    page = done.get_data(as_text=True)
    assert done.status_code == 200, page
    assert "Vous acceptez de nouveaux patients (4 d'ici" in page
    assert "oui, jusqu'à 7,5 km" in page
    session.expire_all()
    assert session.get(Doctor, doctor.id).home_visit_radius_km == 7.5  # type: ignore[union-attr]


def test_a_stored_radius_is_shown_with_a_comma(
    client: FlaskClient, territory: Territory, make_doctor: Callable[..., Doctor]
) -> None:
    doctor = make_doctor(territory, home_visits=True, home_visit_radius_km=7.5)
    form = client.get(_self_link(doctor)).get_data(as_text=True)
    assert 'value="7,5"' in form
