"""Nearest-doctor ranking as a coordinator sees it: who is proposed, in which order, and why not."""

from __future__ import annotations

import dataclasses
import math
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.ranking import (
    EARTH_RADIUS_KM,
    SCAN_BELOW,
    Assessment,
    DoctorIndex,
    DoctorPoint,
    Exclusion,
    PatientNeeds,
    SitePoint,
    index_for,
)

LILLE = (50.6292, 3.0573)


def east_of(origin: tuple[float, float], km: float) -> tuple[float, float]:
    """The point `km` kilometres due east along the parallel (close enough to check order)."""
    lat, lon = origin
    return lat, lon + math.degrees(km / (EARTH_RADIUS_KM * math.cos(math.radians(lat))))


def doctor(doctor_id: int, km: float, **fields: object) -> DoctorPoint:
    lat, lon = east_of(LILLE, km)
    return DoctorPoint(doctor_id, lat, lon, **fields)  # type: ignore[arg-type]


def patient(**needs: bool) -> PatientNeeds:
    return PatientNeeds(*LILLE, **needs)


def reasons_of(assessments: list[Assessment], doctor_id: int) -> tuple[Exclusion, ...]:
    return next(a.reasons for a in assessments if a.doctor_id == doctor_id)


def test_the_nearest_fitting_doctors_come_first_with_their_distance() -> None:
    index = DoctorIndex([doctor(1, 9.0), doctor(2, 1.0), doctor(3, 4.0), doctor(4, 2.5)])

    ranked = index.rank(patient(), k=3)

    assert [c.doctor_id for c in ranked] == [2, 4, 3]
    assert [round(c.distance_km, 2) for c in ranked] == [1.0, 2.5, 4.0]


def test_a_doctor_who_does_not_take_infants_is_left_out_for_a_family_with_a_child_under_6() -> None:
    index = DoctorIndex([doctor(1, 1.0, accepts_under_6=False), doctor(2, 3.0)])
    family = patient(under_6=True)

    assert [c.doctor_id for c in index.rank(family)] == [2]
    assert reasons_of(index.assess(family, 15.0), 1) == (Exclusion.NO_UNDER_6,)
    assert [c.doctor_id for c in index.rank(patient())] == [1, 2]


def test_home_visits_are_proposed_only_within_the_doctors_own_radius() -> None:
    index = DoctorIndex(
        [
            doctor(1, 1.0),  # no home visits
            doctor(2, 6.0, home_visits=True, home_visit_radius_km=5.0),
            doctor(3, 4.0, home_visits=True, home_visit_radius_km=5.0),
        ]
    )
    bedridden = patient(home_visits=True)

    assert [c.doctor_id for c in index.rank(bedridden)] == [3]
    assessed = index.assess(bedridden, 15.0)
    assert reasons_of(assessed, 1) == (Exclusion.NO_HOME_VISITS,)
    assert reasons_of(assessed, 2) == (Exclusion.OUTSIDE_HOME_VISIT_RADIUS,)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"capacity_left": 0}, Exclusion.NO_CAPACITY),
        ({"stale": True}, Exclusion.STALE),
        ({"accepting": False}, Exclusion.NOT_ACCEPTING),
        ({"lat": None, "lon": None}, Exclusion.NOT_PLACED),
    ],
)
def test_a_doctor_who_cannot_take_anyone_is_left_out_and_shown_with_the_reason(
    fields: dict[str, object], reason: Exclusion
) -> None:
    unavailable = dataclasses.replace(doctor(1, 0.5), **fields)  # type: ignore[arg-type]
    index = DoctorIndex([unavailable, doctor(2, 2.0)])

    assert [c.doctor_id for c in index.rank(patient())] == [2]
    assessed = index.assess(patient(), 15.0)
    assert reasons_of(assessed, 1) == (reason,)
    assert reasons_of(assessed, 2) == ()


def test_a_doctor_beyond_the_maximum_distance_is_left_out_as_too_far() -> None:
    index = DoctorIndex([doctor(1, 14.0), doctor(2, 16.0)])

    assert [c.doctor_id for c in index.rank(patient(), max_km=15.0)] == [1]
    assert reasons_of(index.assess(patient(), 15.0), 2) == (Exclusion.TOO_FAR,)
    assert [c.doctor_id for c in index.rank(patient(), max_km=20.0)] == [1, 2]


def test_css_or_ame_cannot_leave_a_doctor_out_since_ranking_does_not_know_of_it() -> None:
    # CSS/AME is a priority criterion for the queue, never a reason to refuse a patient.
    names = [f.name for cls in (PatientNeeds, DoctorPoint) for f in dataclasses.fields(cls)]
    names += [e.value for e in Exclusion]
    assert not [n for n in names if re.search(r"(^|_)(css|ame|c2s|cmu)(_|$)", n)]


@pytest.mark.parametrize("scan_below", [0, SCAN_BELOW], ids=["kd-tree", "scan"])
def test_the_same_inputs_give_the_same_order_with_equal_distances_broken_by_id(
    scan_below: int,
) -> None:
    # A maison de santé: five doctors at one address, listed in no particular order.
    same_place = [doctor(i, 2.0) for i in (7, 3, 9, 1, 5)]
    doctors = [doctor(8, 1.0), *same_place, doctor(2, 3.0)]
    index = DoctorIndex(doctors, scan_below=scan_below)

    first = index.rank(patient(), k=4)
    assert [c.doctor_id for c in first] == [8, 1, 3, 5]
    assert DoctorIndex(doctors[::-1], scan_below=scan_below).rank(patient(), k=4) == first
    assert index.rank(patient(), k=4) == first


def test_asking_for_more_doctors_than_fit_gives_every_one_that_fits() -> None:
    index = DoctorIndex([doctor(1, 1.0), doctor(2, 2.0, capacity_left=0), doctor(3, 30.0)])

    assert [c.doctor_id for c in index.rank(patient(), k=10)] == [1]
    assert DoctorIndex([]).rank(patient()) == []


def test_the_index_of_a_territory_is_reused_until_a_doctor_changes() -> None:
    doctors = (doctor(1, 1.0), doctor(2, 2.0))

    assert index_for(doctors) is index_for(tuple(doctors))
    full = (dataclasses.replace(doctors[0], capacity_left=0), doctors[1])
    assert index_for(full) is not index_for(doctors)
    assert [c.doctor_id for c in index_for(full).rank(patient())] == [2]


# Points on a grid around Lille; doctors share a few addresses, so that many tie in distance.
_coordinate = st.tuples(st.integers(-40, 40), st.integers(-40, 40)).map(
    lambda ij: (LILLE[0] + ij[0] * 0.004, LILLE[1] + ij[1] * 0.006)
)
_mostly = st.sampled_from([True, True, True, True, False])  # most doctors fit, so k is reached
_doctor_fields = st.fixed_dictionaries(
    {
        "accepting": _mostly,
        "stale": _mostly.map(lambda b: not b),
        "capacity_left": st.sampled_from([0, 1, 2, 3]),
        "accepts_under_6": _mostly,
        "accepts_elderly_dependent": _mostly,
        "accepts_ald_followup": _mostly,
        "home_visits": _mostly,
        "home_visit_radius_km": st.sampled_from([0.0, 1.0, 2.5, 5.0, 12.0]),
        "step_free_access": st.booleans(),
    }
)


@st.composite
def _doctors(draw: st.DrawFn) -> list[DoctorPoint]:
    addresses = draw(st.lists(_coordinate, min_size=1, max_size=6))
    count = draw(st.integers(0, 60))  # lists alone stay short; ties need crowded addresses
    drawn = draw(st.lists(_doctor_fields, min_size=count, max_size=count))
    ids = draw(st.permutations(range(1, len(drawn) + 1)))
    doctors = []
    for doctor_id, fields in zip(ids, drawn, strict=True):
        place = draw(st.sampled_from(addresses)) if draw(_mostly) else None
        lat, lon = place if place is not None else (None, None)
        # Some doctors consult at other places too (ties between their own sites included).
        others = draw(st.lists(st.sampled_from(addresses), max_size=2))
        sites = tuple(
            SitePoint(doctor_id * 10 + n, *point) for n, point in enumerate(others, start=1)
        )
        doctors.append(DoctorPoint(doctor_id, lat, lon, **fields, other_sites=sites))
    return doctors


_needs = st.builds(
    PatientNeeds,
    lat=_coordinate.map(lambda p: p[0]),
    lon=_coordinate.map(lambda p: p[1]),
    under_6=st.booleans(),
    elderly_dependent=st.booleans(),
    ald_followup=st.booleans(),
    home_visits=st.booleans(),
    step_free_access=st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(
    doctors=_doctors(),
    patients=st.lists(_needs, min_size=1, max_size=5),
    k=st.integers(0, 6),
    max_km=st.sampled_from([0.0, 1.0, 3.0, 7.5, 15.0, 40.0]),
    # 0: always the KD-tree path; the default: few doctors, so the vectorised scan.
    scan_below=st.sampled_from([0, SCAN_BELOW]),
)
def test_the_fast_ranking_returns_exactly_what_a_full_scan_returns_sites_included(
    doctors: list[DoctorPoint],
    patients: list[PatientNeeds],
    k: int,
    max_km: float,
    scan_below: int,
) -> None:
    index = DoctorIndex(doctors, scan_below=scan_below)
    for needs in patients:
        assert index.rank(needs, k=k, max_km=max_km) == index.rank_full_scan(needs, k, max_km)


def test_a_doctor_is_measured_from_the_nearest_of_their_sites_and_listed_once() -> None:
    far_main = doctor(1, 12.0, other_sites=(SitePoint(7, *east_of(LILLE, 2.0)),))
    near = doctor(2, 3.0)
    index = DoctorIndex([far_main, near])
    ranked = index.rank(patient(), k=10, max_km=15.0)
    assert [(c.doctor_id, c.site) for c in ranked] == [(1, 7), (2, 0)]
    assert ranked[0].distance_km == pytest.approx(2.0, abs=0.01)
    # The same through the KD-tree path, with many sites nearby.
    crowd = [
        doctor(i, 5.0 + i / 100, other_sites=(SitePoint(1000 + i, *east_of(LILLE, 6.0)),))
        for i in range(3, 60)
    ]
    tree = DoctorIndex([far_main, near, *crowd], scan_below=0)
    ids = [c.doctor_id for c in tree.rank(patient(), k=10, max_km=15.0)]
    assert ids[:2] == [1, 2] and len(ids) == len(set(ids)) == 10


def test_a_doctor_placed_only_at_a_secondary_site_is_ranked_from_it() -> None:
    only_second = DoctorPoint(5, None, None, other_sites=(SitePoint(9, *east_of(LILLE, 4.0)),))
    unplaced = DoctorPoint(6, None, None)
    index = DoctorIndex([only_second, unplaced])
    assert [(c.doctor_id, c.site) for c in index.rank(patient())] == [(5, 9)]
    reasons = {a.doctor_id: a.reasons for a in index.assess(patient(), 15.0)}
    assert reasons == {5: (), 6: (Exclusion.NOT_PLACED,)}


def test_home_visits_count_from_the_site_nearest_the_home() -> None:
    # Radius 3 km: the main practice is 8 km away, the secondary site 2 km.
    visiting = doctor(
        1,
        8.0,
        home_visits=True,
        home_visit_radius_km=3.0,
        other_sites=(SitePoint(4, *east_of(LILLE, 2.0)),),
    )
    assert [c.site for c in DoctorIndex([visiting]).rank(patient(home_visits=True))] == [4]
