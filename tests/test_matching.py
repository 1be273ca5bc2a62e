"""Ranking doctors for a request: needs from the household, nearest fitting doctors first."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import Accepting, Doctor, Request, Territory, VolunteerStatus, utcnow
from orientation.services.matching import patient_needs, rank_doctors

TODAY = date(2026, 11, 23)


def test_needs_come_from_birth_dates_ald_and_the_answers(
    make_territory: Callable[..., Territory], make_request: Callable[..., Request]
) -> None:
    territory = make_territory()
    household = make_request(
        territory,
        persons=[
            ("Léa", "Martin", date(2022, 1, 1)),  # 4 years old
            ("Jean", "Martin", date(1956, 11, 30)),  # 70 in a week: not yet
        ],
        need_home_visits=True,
        need_reduced_mobility=True,
    )
    needs = patient_needs(household, TODAY)
    assert needs.under_6 and not needs.elderly_dependent and not needs.ald_followup
    assert needs.home_visits and needs.step_free_access
    commune = gazetteer().by_insee["59017"]
    assert (needs.lat, needs.lon) == (commune.lat, commune.lon)  # no address point: the commune

    elderly = make_request(
        territory, persons=[("Paul", "Roy", date(1950, 1, 1))], lat=50.6, lon=3.0
    )
    elderly.persons[0].ald = True
    needs = patient_needs(elderly, TODAY)
    assert needs.elderly_dependent and needs.ald_followup and (needs.lat, needs.lon) == (50.6, 3.0)


def test_ranking_keeps_fitting_doctors_nearest_first_and_explains_the_others(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(
        territory, persons=[("Léa", "Petit", date(2023, 3, 1))], lat=50.6880, lon=2.8800
    )
    near = make_doctor(territory, lat=50.6890, lon=2.8810)
    farther = make_doctor(territory, lat=50.7000, lon=2.9000)
    no_children = make_doctor(territory, lat=50.6885, lon=2.8805, accepts_under_6=False)
    full = make_doctor(territory, lat=50.6886, lon=2.8806, capacity_left=0)
    stale = make_doctor(
        territory, lat=50.6887, lon=2.8807, confirmed_at=utcnow() - timedelta(days=400)
    )
    paused = make_doctor(territory, lat=50.6888, lon=2.8808, accepting=Accepting.NO)
    too_far = make_doctor(territory, lat=51.0, lon=2.3)
    unplaced = make_doctor(territory, lat=None, lon=None)
    make_doctor(territory, volunteer_status=VolunteerStatus.NOT_YET)  # never asked: not listed

    ranking = rank_doctors(session, territory, request, utcnow())
    assert [c.doctor.id for c in ranking.candidates] == [near.id, farther.id]
    assert ranking.candidates[0].distance_km < 0.2
    reasons = {d.doctor.id: d.reasons for d in ranking.left_out}
    assert reasons[no_children.id] == ("ne prend pas d'enfants de moins de 6 ans",)
    assert reasons[full.id] == ("plus de place annoncée",)
    assert reasons[stale.id] == ("disponibilité à reconfirmer (trop ancienne)",)
    assert reasons[paused.id] == ("n'accepte pas de nouveaux patients",)
    assert reasons[too_far.id] == ("trop loin",)
    assert reasons[unplaced.id] == ("adresse du cabinet non localisée",)
    assert len(reasons) == 6


def test_home_visits_and_reduced_mobility_filter_doctors(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(
        territory, lat=50.6880, lon=2.8800, need_home_visits=True, need_reduced_mobility=True
    )
    fits = make_doctor(
        territory,
        lat=50.70,
        lon=2.90,
        home_visits=True,
        home_visit_radius_km=5,
        step_free_access=True,
    )
    small_radius = make_doctor(
        territory, lat=50.70, lon=2.90, home_visits=True, home_visit_radius_km=1,
        step_free_access=True,
    )  # fmt: skip
    stairs = make_doctor(territory, lat=50.69, lon=2.88, home_visits=True, home_visit_radius_km=5)
    ranking = rank_doctors(session, territory, request, utcnow())
    assert [c.doctor.id for c in ranking.candidates] == [fits.id]
    reasons = {d.doctor.id: d.reasons for d in ranking.left_out}
    assert reasons[small_radius.id] == ("domicile hors de son rayon de visites",)
    assert reasons[stairs.id] == ("cabinet sans accès de plain-pied",)


def test_a_doctor_paused_until_a_past_day_accepts_again(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(territory)
    back = make_doctor(
        territory, accepting=Accepting.PAUSED, paused_until=utcnow().date() - timedelta(days=1)
    )
    still_paused = make_doctor(
        territory, accepting=Accepting.PAUSED, paused_until=utcnow().date() + timedelta(days=9)
    )
    ids = [c.doctor.id for c in rank_doctors(session, territory, request, utcnow()).candidates]
    assert back.id in ids and still_paused.id not in ids
