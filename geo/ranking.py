"""Nearest volunteer doctors who fit a patient's needs, by great-circle distance.

Plain Python, numpy and scipy: the caller builds `DoctorPoint`s from the database and a
`PatientNeeds` from the request. Same inputs, same order: ties in distance are broken by doctor
id. CSS/AME is deliberately absent: it is a priority flag, never a reason to leave a doctor out.

How `rank` stays fast (bench/ranking.py measures it): the doctors who fit a combination of needs
are a fixed set (accepting, not stale, capacity left, offering what is needed), so the index
keeps one KD-tree per combination, over unit-sphere 3D points, built the first time that
combination is asked. The straight-line (chord) distance between two points of the sphere grows
with their great-circle distance, so the tree's nearest points are the great-circle nearest; the
exact haversine distance is then computed only for them. Only home visits depend on the
distance itself (the doctor's own radius): the search widens until enough doctors fit. When
few doctors fit (small territories), measuring them all is faster than the tree.
`assess` stays a full scan: it must show every doctor anyway.

A doctor may consult at several places (a main practice and "sites secondaires"). The index
holds sites, not doctors: the trees are built over every placed site of the fitting doctors,
a query keeps each doctor's nearest site only, and widens until k distinct doctors are known
for sure. Each doctor is listed once, with the site it was measured from.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius

# Chord distances from the tree and haversine distances are rounded differently; a candidate
# set is only trusted once the search went past the k-th distance by this margin (in chord
# units of the unit sphere: 1e-12 is 6 µm on the ground), so near-ties are never cut.
_CHORD_REL_MARGIN = 1e-9
_CHORD_ABS_MARGIN = 1e-12

# Below this many fitting doctors a vectorised scan beats the tree's fixed cost per query
# (bench/ranking.py: about 15 µs against 35 µs at 500 doctors).
SCAN_BELOW = 1024


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


MAIN_SITE = 0  # the site key of a doctor's main practice; other sites use their own id (> 0)


@dataclass(frozen=True, slots=True)
class SitePoint:
    """Another placed site where the doctor consults (its key, never 0, and its point)."""

    key: int
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class DoctorPoint:
    """What ranking needs to know of a doctor (lat/lon None when the main practice is not
    placed yet; `other_sites` holds only the placed ones)."""

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
    other_sites: tuple[SitePoint, ...] = ()

    def sites(self) -> list[tuple[int, float, float]]:
        """Every placed site as (key, lat, lon), the main practice first."""
        main = [] if self.lat is None or self.lon is None else [(MAIN_SITE, self.lat, self.lon)]
        return main + [(s.key, s.lat, s.lon) for s in self.other_sites]


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
    """A ranked doctor, measured from its nearest site (`site`: MAIN_SITE or the site key)."""

    doctor_id: int
    distance_km: float
    site: int = MAIN_SITE


@dataclass(frozen=True, slots=True)
class Assessment:
    """One doctor as seen for one patient: distance from its nearest site and every reason
    to leave them out."""

    doctor_id: int
    distance_km: float | None
    reasons: tuple[Exclusion, ...]
    site: int | None = MAIN_SITE  # None when the doctor has no placed site


# The needs that leave out doctors who do not offer them, in the order of the tree cache key.
_NEED_FIELDS = ("under_6", "elderly_dependent", "ald_followup", "home_visits", "step_free_access")
_OFFER_FIELDS = (
    "accepts_under_6",
    "accepts_elderly_dependent",
    "accepts_ald_followup",
    "home_visits",
    "step_free_access",
)


def _haversine(
    phi1: float, lam1: float, cos1: float, phi2: np.ndarray, lam2: np.ndarray, cos2: np.ndarray
) -> np.ndarray:
    # One formula for the full scan and the fast path, so both give the same bits.
    a = np.sin((phi2 - phi1) * 0.5) ** 2 + cos1 * cos2 * np.sin((lam2 - lam1) * 0.5) ** 2
    return (2 * EARTH_RADIUS_KM) * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


def _radians(lat: float, lon: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lon)
    return phi, lam, math.cos(phi)


def haversine_km(lat1: float, lon1: float, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distances from one point to many (vectorised)."""
    phi2 = np.radians(np.asarray(lat2, dtype=float))
    return _haversine(*_radians(lat1, lon1), phi2, np.radians(lon2), np.cos(phi2))


def _chord(km: float) -> float:
    """Straight-line distance through the unit sphere for a great-circle distance in km."""
    return 2.0 * math.sin(min(km / (2 * EARTH_RADIUS_KM), math.pi / 2))


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


def _nearest_per_doctor(ids: np.ndarray, keys: np.ndarray, km: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k nearest doctors' nearest sites, nearest first (ties: id, site)."""
    order = np.lexsort((keys, ids, km))
    seen: set[int] = set()
    keep: list[int] = []
    # A plain loop: the arrays are a few dozen sites, and it stops at the k-th doctor.
    for position, doctor_id in enumerate(ids[order].tolist()):
        if doctor_id not in seen:
            seen.add(doctor_id)
            keep.append(position)
            if len(keep) == k:
                break
    result: np.ndarray = order[keep]
    return result


class _Fitting:
    """The sites of the doctors who fit one combination of needs (distance aside), with
    their KD-tree."""

    def __init__(self, index: DoctorIndex, doctors: np.ndarray) -> None:
        rows = np.flatnonzero(doctors[index._site_doctor])
        self.size = len(rows)  # sites
        self.doctors = int(doctors.sum())
        # Several sites for some doctor: results need the nearest-site-per-doctor step.
        self.several = self.size > self.doctors
        owner = index._site_doctor[rows]
        self.ids = index._ids[owner]
        self.keys = index._site_key[rows]
        self.phi = index._phi[rows]
        self.lam = index._lam[rows]
        self.cos = index._cos[rows]
        self.radius = index._radius[owner]
        self.max_radius = float(self.radius.max()) if self.size else 0.0
        self.tree = None
        if self.size >= index._scan_below:
            # Imported here: scipy.spatial costs ~0.4 s to import, and most territories are
            # small enough for the plain scan, so the web workers start without it.
            from scipy.spatial import cKDTree

            self.tree = cKDTree(index._xyz[rows])

    def best(self, rows: np.ndarray, km: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Among these sites (rows, distances), the k nearest doctors' nearest sites, in
        ranking order."""
        ids = self.ids[rows]
        if self.several:
            keep = _nearest_per_doctor(ids, self.keys[rows], km, k)
        else:
            keep = np.lexsort((ids, km))[:k]
        return rows[keep], km[keep]


class DoctorIndex:
    """The doctors of a territory, ready to be ranked for many patients."""

    def __init__(self, doctors: Sequence[DoctorPoint], *, scan_below: int = SCAN_BELOW) -> None:
        self.doctors = list(doctors)
        self._scan_below = scan_below
        placed: list[DoctorPoint] = []
        site_doctor: list[int] = []
        site_key: list[int] = []
        lat: list[float] = []
        lon: list[float] = []
        starts: list[int] = []
        for d in self.doctors:
            sites = d.sites()
            if not sites:
                continue
            starts.append(len(site_key))
            for key, site_lat, site_lon in sites:
                site_doctor.append(len(placed))
                site_key.append(key)
                lat.append(site_lat)
                lon.append(site_lon)
            placed.append(d)
        self._placed = placed
        # Per placed doctor.
        self._ids = np.array([d.id for d in placed], dtype=np.int64)
        self._radius = np.array([d.home_visit_radius_km for d in placed], dtype=float)
        self._open = np.array(
            [d.accepting and not d.stale and d.capacity_left > 0 for d in placed], dtype=bool
        )
        self._offers = [
            np.array([bool(getattr(d, field)) for d in placed], dtype=bool)
            for field in _OFFER_FIELDS
        ]
        # Per site, grouped by doctor (main practice first): `_starts` opens each group.
        self._starts = np.array(starts, dtype=np.int64)
        self._site_doctor = np.array(site_doctor, dtype=np.int64)
        self._site_key = np.array(site_key, dtype=np.int64)
        self._phi = np.radians(np.array(lat, dtype=float))
        self._lam = np.radians(np.array(lon, dtype=float))
        self._cos = np.cos(self._phi)
        self._xyz = np.column_stack(
            (self._cos * np.cos(self._lam), self._cos * np.sin(self._lam), np.sin(self._phi))
        )
        # A need every open doctor meets changes nothing: dropping it from the key shares trees.
        self._decisive = [bool((self._open & ~offer).any()) for offer in self._offers]
        self._fitting: dict[tuple[bool, ...], _Fitting] = {}
        self._by_needs: dict[tuple[bool, ...], _Fitting] = {}  # as asked, before dropping

    def _fitting_for(self, needs: PatientNeeds) -> _Fitting:
        asked = (
            needs.under_6,
            needs.elderly_dependent,
            needs.ald_followup,
            needs.home_visits,
            needs.step_free_access,
        )
        fitting = self._by_needs.get(asked)
        if fitting is None:
            key = tuple(a and d for a, d in zip(asked, self._decisive, strict=True))
            fitting = self._fitting.get(key)
            if fitting is None:
                mask = self._open.copy()
                for needed, offer in zip(key, self._offers, strict=True):
                    if needed:
                        mask &= offer
                fitting = self._fitting[key] = _Fitting(self, mask)
            self._by_needs[asked] = fitting
        return fitting

    def assess(self, needs: PatientNeeds, max_km: float) -> list[Assessment]:
        """Every doctor with its distance (from its nearest site) and the reasons it is left
        out (empty: it fits)."""
        nearest: dict[int, tuple[float, int]] = {}
        if len(self._placed):
            km = _haversine(*_radians(needs.lat, needs.lon), self._phi, self._lam, self._cos)
            # Sites are grouped by doctor: sort each group by distance, keep its first.
            order = np.lexsort((self._site_key, km, self._site_doctor))[self._starts]
            nearest = {
                d.id: (float(x), int(key))
                for d, x, key in zip(
                    self._placed, km[order].tolist(), self._site_key[order].tolist(), strict=True
                )
            }
        result = []
        for d in self.doctors:
            distance, site = nearest.get(d.id, (None, None))
            result.append(Assessment(d.id, distance, _reasons(d, needs, distance, max_km), site))
        result.sort(key=lambda a: (a.distance_km is None, a.distance_km or 0.0, a.doctor_id))
        return result

    def rank_full_scan(
        self, needs: PatientNeeds, k: int = 10, max_km: float = 15.0
    ) -> list[Candidate]:
        """What `rank` must return, computed the slow, obvious way (tests and bench check it)."""
        return [
            Candidate(a.doctor_id, a.distance_km, a.site if a.site is not None else MAIN_SITE)
            for a in self.assess(needs, max_km)
            if not a.reasons and a.distance_km is not None
        ][: max(k, 0)]

    def rank(self, needs: PatientNeeds, k: int = 10, max_km: float = 15.0) -> list[Candidate]:
        """The k nearest doctors who fit, each once from its nearest site, nearest first,
        ties by id."""
        fitting = self._fitting_for(needs)
        size = fitting.size
        limit_km = min(max_km, fitting.max_radius) if needs.home_visits else max_km
        if k <= 0 or fitting.size == 0 or limit_km < 0:
            return []
        phi, lam, cos = _radians(needs.lat, needs.lon)
        tree = fitting.tree
        if tree is None:
            return self._scan(fitting, needs, k, max_km, (phi, lam, cos))
        point = (cos * math.cos(lam), cos * math.sin(lam), math.sin(phi))
        bound = _chord(limit_km) * (1 + _CHORD_REL_MARGIN) + _CHORD_ABS_MARGIN
        # Points nearer than this are surely within max_km: no need to check them one by one.
        surely_within = _chord(max_km) * (1 - _CHORD_REL_MARGIN) - _CHORD_ABS_MARGIN
        # Home visits leave out doctors beyond their own radius: ask for more from the start;
        # doctors with several sites take more than one of the nearest points.
        want = 4 * k if needs.home_visits else k + 2
        want = min(size, math.ceil(want * size / fitting.doctors))
        while True:
            # Nearest first; rows of missing neighbours (beyond the bound) are `size`.
            chords, rows = tree.query(
                point, k=[1] if want == 1 else want, distance_upper_bound=bound
            )
            seen = want if rows[-1] != size else int(np.searchsorted(rows, size))
            rows = rows[:seen]
            km = _haversine(phi, lam, cos, fitting.phi[rows], fitting.lam[rows], fitting.cos[rows])
            if needs.home_visits:
                fits = (km <= fitting.radius[rows]) & (km <= max_km)
                rows, km = rows[fits], km[fits]
            elif seen and chords[seen - 1] >= surely_within:
                fits = km <= max_km
                rows, km = rows[fits], km[fits]
            best, best_km = fitting.best(rows, km, k)
            # Done when everyone within the bound was returned, or every fitting site was,
            # or the farthest point returned lies beyond the k-th doctor's distance (with
            # margin): then no unseen site can be as near, ties at the k-th distance included,
            # nor bring a doctor of the first k nearer.
            if seen < want or want == size:
                break
            if len(best) >= k:
                kth = float(best_km[k - 1])
                if chords[seen - 1] > _chord(kth) * (1 + _CHORD_REL_MARGIN) + _CHORD_ABS_MARGIN:
                    break
            want = min(size, want * 2)
        return _candidates(fitting, best, best_km)

    @staticmethod
    def _scan(
        fitting: _Fitting,
        needs: PatientNeeds,
        k: int,
        max_km: float,
        point: tuple[float, float, float],
    ) -> list[Candidate]:
        """Few fitting sites: measure them all."""
        km = _haversine(*point, fitting.phi, fitting.lam, fitting.cos)
        fits = km <= max_km
        if needs.home_visits:
            fits &= km <= fitting.radius
        rows = np.flatnonzero(fits)
        best, best_km = fitting.best(rows, km[rows], k)
        return _candidates(fitting, best, best_km)


def _candidates(fitting: _Fitting, rows: np.ndarray, km: np.ndarray) -> list[Candidate]:
    return [
        Candidate(i, d, s)
        for i, d, s in zip(
            fitting.ids[rows].tolist(), km.tolist(), fitting.keys[rows].tolist(), strict=True
        )
    ]


@lru_cache(maxsize=32)
def index_for(doctors: tuple[DoctorPoint, ...]) -> DoctorIndex:
    """The index of these doctors, built once and reused while their data is unchanged.

    The doctors are the key (frozen dataclasses compare by value): any change of place,
    capacity or needs offered gives a new index, so a stale ranking is never served.
    """
    return DoctorIndex(doctors)
