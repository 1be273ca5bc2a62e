"""Nearest volunteer doctors who fit a patient's needs, by great-circle distance.

Plain Python and numpy: the caller builds `DoctorPoint`s from the database and a `PatientNeeds`
from the request. Same inputs, same order: ties in distance are broken by doctor id.
CSS/AME is deliberately absent: it is a priority flag, never a reason to leave a doctor out.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius


class Exclusion(enum.StrEnum):
    NOT_PLACED = "not_placed"
    NOT_ACCEPTING = "not_accepting"
    STALE = "stale"
    NO_CAPACITY = "no_capacity"
    NO_UNDER_6 = "no_under_6"
    NO_ELDERLY_DEPENDENT = "no_elderly_dependent"
    NO_ALD_FOLLOWUP = "no_ald_followup"
    NO_HOME_VISITS = "no_home_visits"
    OUTSIDE_HOME_VISIT_RADIUS = "outside_home_visit_radius"
    NO_STEP_FREE_ACCESS = "no_step_free_access"
    TOO_FAR = "too_far"


@dataclass(frozen=True, slots=True)
class DoctorPoint:
    """What ranking needs to know of a doctor (lat/lon None when not placed yet)."""

    id: int
    lat: float | None
    lon: float | None
    accepting: bool = True
    stale: bool = False
    capacity_left: int = 1
    accepts_under_6: bool = True
    accepts_elderly_dependent: bool = True
    accepts_ald_followup: bool = True
    home_visits: bool = False
    home_visit_radius_km: float = 0.0
    step_free_access: bool = False


@dataclass(frozen=True, slots=True)
class PatientNeeds:
    """The household's point and what the doctor must offer."""

    lat: float
    lon: float
    under_6: bool = False
    elderly_dependent: bool = False
    ald_followup: bool = False
    home_visits: bool = False
    step_free_access: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    doctor_id: int
    distance_km: float


@dataclass(frozen=True, slots=True)
class Assessment:
    """One doctor as seen for one patient: distance and every reason to leave them out."""

    doctor_id: int
    distance_km: float | None
    reasons: tuple[Exclusion, ...]


def haversine_km(lat1: float, lon1: float, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distances from one point to many (vectorised)."""
    p1, l1 = np.radians(lat1), np.radians(lon1)
    p2, l2 = np.radians(lat2), np.radians(lon2)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin((l2 - l1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def _reasons(
    d: DoctorPoint, needs: PatientNeeds, distance: float | None, max_km: float
) -> tuple[Exclusion, ...]:
    if distance is None:
        return (Exclusion.NOT_PLACED,)
    reasons = []
    if not d.accepting:
        reasons.append(Exclusion.NOT_ACCEPTING)
    if d.stale:
        reasons.append(Exclusion.STALE)
    if d.capacity_left <= 0:
        reasons.append(Exclusion.NO_CAPACITY)
    if needs.under_6 and not d.accepts_under_6:
        reasons.append(Exclusion.NO_UNDER_6)
    if needs.elderly_dependent and not d.accepts_elderly_dependent:
        reasons.append(Exclusion.NO_ELDERLY_DEPENDENT)
    if needs.ald_followup and not d.accepts_ald_followup:
        reasons.append(Exclusion.NO_ALD_FOLLOWUP)
    if needs.home_visits and not d.home_visits:
        reasons.append(Exclusion.NO_HOME_VISITS)
    elif needs.home_visits and distance > d.home_visit_radius_km:
        reasons.append(Exclusion.OUTSIDE_HOME_VISIT_RADIUS)
    if needs.step_free_access and not d.step_free_access:
        reasons.append(Exclusion.NO_STEP_FREE_ACCESS)
    if distance > max_km:
        reasons.append(Exclusion.TOO_FAR)
    return tuple(reasons)


class DoctorIndex:
    """The doctors of a territory, ready to be ranked for many patients."""

    def __init__(self, doctors: Sequence[DoctorPoint]) -> None:
        self.doctors = list(doctors)
        placed = [d for d in self.doctors if d.lat is not None and d.lon is not None]
        self._placed = placed
        self._lat = np.array([d.lat for d in placed], dtype=float)
        self._lon = np.array([d.lon for d in placed], dtype=float)

    def assess(self, needs: PatientNeeds, max_km: float) -> list[Assessment]:
        """Every doctor with its distance and the reasons it is left out (empty: it fits)."""
        distances = haversine_km(needs.lat, needs.lon, self._lat, self._lon)
        by_id = {d.id: float(x) for d, x in zip(self._placed, distances, strict=True)}
        result = [
            Assessment(d.id, by_id.get(d.id), _reasons(d, needs, by_id.get(d.id), max_km))
            for d in self.doctors
        ]
        result.sort(key=lambda a: (a.distance_km is None, a.distance_km or 0.0, a.doctor_id))
        return result

    def rank(self, needs: PatientNeeds, k: int = 10, max_km: float = 15.0) -> list[Candidate]:
        """The k nearest doctors who fit, nearest first, ties by id."""
        return [
            Candidate(a.doctor_id, a.distance_km)
            for a in self.assess(needs, max_km)
            if not a.reasons and a.distance_km is not None
        ][:k]
