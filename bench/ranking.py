"""Nearest fitting doctors: ours against the naive way, numpy, scikit-learn and PostGIS.

    .venv/bin/pip install -e '.[bench]'     # scikit-learn, for the BallTree column
    .venv/bin/python bench/ranking.py [--database postgresql+psycopg://postgres@127.0.0.1/test]

Doctors and patients are placed where people live: communes of the gazetteer drawn in
proportion to their population, then moved a few km at random. One doctor in five also
consults at a second site (one in thirty at a third), 2 to 12 km from the main practice: every
method ranks doctors by their nearest site and lists each doctor once. Every query asks for
k=10 within 15 km with a realistic mix of needs (about 1 in 5 families with a child under 6, 1 in 15
bedridden needing home visits, some elderly dependent, ALD follow-up, step-free access; about a
third are priority cases, which changes nothing here: priority is never a filter). Each method is
timed in its own warm loop, one query at a time; "same ten" compares its doctor ids, in order,
with the exact full scan (geodesic distances on the ellipsoid can legitimately order near-ties
differently from great-circle ones: reported, not hidden). Stops by itself in a few minutes; only
talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from geopy.distance import geodesic

from geo.communes import gazetteer
from geo.ranking import (
    _NEED_FIELDS,
    _OFFER_FIELDS,
    EARTH_RADIUS_KM,
    DoctorIndex,
    DoctorPoint,
    PatientNeeds,
    SitePoint,
    _haversine,
    _radians,
)

K = 10
MAX_KM = 15.0
SIZES = (500, 6_000, 100_000)
QUERIES = 600  # per fast method and size
SLOW_QUERIES = {500: 20, 6_000: 5, 100_000: 1}  # the geodesic loop takes seconds at 100,000
SCAN_QUERIES = {500: 600, 6_000: 400, 100_000: 150}
JITTER_KM = 3.0
BLOCK = 50
BUDGET_US = 10e6  # per method and size: a slow method stops early, so the bench ends in minutes

Ranker = Callable[[PatientNeeds], list[int]]


@dataclass
class Row:
    size: int
    method: str
    timings_us: list[float]
    same: int
    checked: int
    note: str = ""


def place_near_people(rng: random.Random, count: int) -> list[tuple[float, float]]:
    """Points drawn by commune population, jittered a few km (not uniform over the region)."""
    communes = list(gazetteer().by_insee.values())
    weights = [c.population for c in communes]
    points = []
    for commune in rng.choices(communes, weights=weights, k=count):
        north, east = rng.gauss(0, JITTER_KM / 2), rng.gauss(0, JITTER_KM / 2)
        lat = commune.lat + math.degrees(north / EARTH_RADIUS_KM)
        lon = commune.lon + math.degrees(
            east / (EARTH_RADIUS_KM * math.cos(math.radians(commune.lat)))
        )
        points.append((lat, lon))
    return points


SECOND_SITE = 0.2
THIRD_SITE = 1 / 30


def other_sites(
    rng: random.Random, doctor_id: int, lat: float, lon: float
) -> tuple[SitePoint, ...]:
    """A second (and rarely a third) site 2 to 12 km away, as GPs with a "site secondaire"."""
    count = (rng.random() < SECOND_SITE) + (rng.random() < THIRD_SITE)
    sites = []
    for n in range(count):
        km, bearing = rng.uniform(2, 12), rng.uniform(0, 2 * math.pi)
        site_lat = lat + math.degrees(km * math.cos(bearing) / EARTH_RADIUS_KM)
        site_lon = lon + math.degrees(
            km * math.sin(bearing) / (EARTH_RADIUS_KM * math.cos(math.radians(lat)))
        )
        sites.append(SitePoint(doctor_id * 10 + n + 1, site_lat, site_lon))
    return tuple(sites)


def make_doctors(rng: random.Random, count: int) -> list[DoctorPoint]:
    return [
        DoctorPoint(
            id=i + 1,
            lat=lat,
            lon=lon,
            accepting=rng.random() < 0.85,
            stale=rng.random() < 0.1,
            capacity_left=rng.choice([0, 1, 2, 3, 5]),
            accepts_under_6=rng.random() < 0.7,
            accepts_elderly_dependent=rng.random() < 0.8,
            accepts_ald_followup=rng.random() < 0.9,
            home_visits=rng.random() < 0.3,
            home_visit_radius_km=rng.choice([3.0, 5.0, 8.0, 10.0, 15.0]),
            step_free_access=rng.random() < 0.6,
            other_sites=other_sites(rng, i + 1, lat, lon),
        )
        for i, (lat, lon) in enumerate(place_near_people(rng, count))
    ]


def make_patients(rng: random.Random, count: int) -> list[PatientNeeds]:
    return [
        PatientNeeds(
            lat,
            lon,
            under_6=rng.random() < 0.2,
            elderly_dependent=rng.random() < 0.1,
            ald_followup=rng.random() < 0.15,
            home_visits=rng.random() < 1 / 15,
            step_free_access=rng.random() < 0.05,
        )
        for lat, lon in place_near_people(rng, count)
    ]


def fits(d: DoctorPoint, needs: PatientNeeds) -> bool:
    """Everything but distance, written plainly (the naive way)."""
    if d.lat is None or not d.accepting or d.stale or d.capacity_left <= 0:
        return False
    return all(
        getattr(d, offer) or not getattr(needs, need)
        for need, offer in zip(_NEED_FIELDS, _OFFER_FIELDS, strict=True)
    )


def naive(doctors: list[DoctorPoint]) -> Ranker:
    def rank(needs: PatientNeeds) -> list[int]:
        found = []
        for d in doctors:
            if fits(d, needs):
                home = (needs.lat, needs.lon)
                km = min(geodesic(home, (lat, lon)).km for _, lat, lon in d.sites())
                if km <= MAX_KM and (not needs.home_visits or km <= d.home_visit_radius_km):
                    found.append((km, d.id))
        found.sort()
        return [i for _, i in found[:K]]

    return rank


class Columns:
    """The sites as numpy columns (each with its doctor's data), for the scan and BallTree."""

    def __init__(self, doctors: list[DoctorPoint]) -> None:
        sites = [(d, lat, lon) for d in doctors for _, lat, lon in d.sites()]
        self.ids = np.array([d.id for d, _, _ in sites])
        lat = np.array([lat for _, lat, _ in sites])
        lon = np.array([lon for _, _, lon in sites])
        self.phi, self.lam = np.radians(lat), np.radians(lon)
        self.cos = np.cos(self.phi)
        self.open = np.array(
            [d.accepting and not d.stale and d.capacity_left > 0 for d, _, _ in sites]
        )
        self.offers = [np.array([getattr(d, f) for d, _, _ in sites]) for f in _OFFER_FIELDS]
        self.radius = np.array([d.home_visit_radius_km for d, _, _ in sites])

    def mask(self, needs: PatientNeeds) -> np.ndarray:
        mask = self.open.copy()
        for need, offer in zip(_NEED_FIELDS, self.offers, strict=True):
            if getattr(needs, need):
                mask &= offer
        return mask


def numpy_scan(columns: Columns) -> Ranker:
    def rank(needs: PatientNeeds) -> list[int]:
        km = _haversine(*_radians(needs.lat, needs.lon), columns.phi, columns.lam, columns.cos)
        keep = columns.mask(needs) & (km <= MAX_KM)
        if needs.home_visits:
            keep &= km <= columns.radius
        rows = np.flatnonzero(keep)
        return first_per_doctor(columns.ids[rows], km[rows])

    return rank


def first_per_doctor(ids: np.ndarray, km: np.ndarray) -> list[int]:
    """The K nearest doctors, each once at its nearest site (ties by id)."""
    found: list[int] = []
    for i in ids[np.lexsort((ids, km))].tolist():
        if i not in found:
            found.append(i)
            if len(found) == K:
                break
    return found


def ball_tree(columns: Columns) -> Ranker:
    """One BallTree over every doctor; filters applied to the neighbours, widening until k fit."""
    from sklearn.neighbors import BallTree

    tree = BallTree(np.column_stack((columns.phi, columns.lam)), metric="haversine")
    size = len(columns.ids)

    def rank(needs: PatientNeeds) -> list[int]:
        mask = columns.mask(needs)
        want = min(size, 4 * K)
        point = np.radians([[needs.lat, needs.lon]])
        while True:
            dist, rows = tree.query(point, k=want)
            km, rows = dist[0] * EARTH_RADIUS_KM, rows[0]
            keep = mask[rows] & (km <= MAX_KM)
            if needs.home_visits:
                keep &= km <= columns.radius[rows]
            if len(set(columns.ids[rows[keep]].tolist())) >= K or km[-1] > MAX_KM or want == size:
                break
            want = min(size, want * 4)
        rows, km = rows[keep], km[keep]
        return first_per_doctor(columns.ids[rows], km)

    return rank


@contextlib.contextmanager
def postgis(url: str, doctors: list[DoctorPoint]) -> Iterator[Ranker]:
    """A scratch schema with the sites, a GiST index on geography, KNN with `<->`."""
    import psycopg

    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"bench_ranking_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            conn.execute(f'CREATE EXTENSION IF NOT EXISTS postgis SCHEMA "{schema}"')
            (postgis_schema,) = conn.execute(
                "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname='postgis'"
            ).fetchone()  # type: ignore[misc]
            conn.execute(f'SET search_path = "{schema}", {postgis_schema}')
            conn.execute(
                "CREATE TABLE site (id int, geog geography(Point, 4326) NOT NULL,"
                " open boolean, under_6 boolean, elderly boolean, ald boolean, home boolean,"
                " radius_m double precision, step_free boolean)"
            )
            buffer = io.StringIO()
            for d in doctors:
                for _, lat, lon in d.sites():
                    buffer.write(
                        f"{d.id}\tSRID=4326;POINT({lon!r} {lat!r})\t"
                        f"{d.accepting and not d.stale and d.capacity_left > 0}\t"
                        f"{d.accepts_under_6}\t{d.accepts_elderly_dependent}\t"
                        f"{d.accepts_ald_followup}\t{d.home_visits}\t"
                        f"{d.home_visit_radius_km * 1000}\t{d.step_free_access}\n"
                    )
            with conn.cursor().copy("COPY site FROM STDIN") as copy:
                copy.write(buffer.getvalue())
            conn.execute("CREATE INDEX ON site USING gist (geog)")
            conn.execute("ANALYZE site")
            # The textbook KNN form: `<->` alone in ORDER BY lets the GiST index walk nearest
            # first (adding `, id` or ST_DWithin there makes PostgreSQL sort every row within
            # reach instead: 9 ms at 100,000). Ties are put in id order only among the k kept.
            # Sites, not doctors, are nearest: take 3k sites and keep each doctor's nearest
            # (a doctor with many sites nearby could leave fewer than k: "same ten" shows it).
            query = (
                "SELECT id FROM (SELECT id, min(d) AS d FROM"
                " (SELECT id, geog <-> %(p)s::geography AS d FROM site WHERE open"
                " AND (under_6 OR NOT %(u)s) AND (elderly OR NOT %(e)s) AND (ald OR NOT %(a)s)"
                " AND (step_free OR NOT %(s)s)"
                " AND (NOT %(h)s OR (home AND ST_DWithin(geog, %(p)s::geography, radius_m, false)))"
                " ORDER BY geog <-> %(p)s::geography LIMIT %(sites)s) AS nearest"
                " GROUP BY id) AS doctor WHERE d <= %(m)s ORDER BY d, id LIMIT %(k)s"
            )
            conn.execute("SET jit = off")  # compiling each short query costs more than it runs

            def rank(needs: PatientNeeds) -> list[int]:
                params = {
                    "p": f"SRID=4326;POINT({needs.lon!r} {needs.lat!r})",
                    "u": needs.under_6,
                    "e": needs.elderly_dependent,
                    "a": needs.ald_followup,
                    "s": needs.step_free_access,
                    "h": needs.home_visits,
                    "m": MAX_KM * 1000,
                    "k": K,
                    "sites": 3 * K,
                }
                return [r[0] for r in conn.execute(query, params, prepare=True).fetchall()]

            yield rank
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def measure(
    size: int,
    methods: list[tuple[str, Ranker, int, str]],
    patients: list[PatientNeeds],
    exact: list[list[int]],
) -> list[Row]:
    """Time each method one query at a time, in turns of BLOCK queries, so that a busy moment
    of the machine falls on every method alike rather than on whichever ran then."""
    rows = [Row(size, name, [], 0, 0, note) for name, _, _, note in methods]
    for _, rank, _, _ in methods:
        for needs in patients[:20]:  # warm caches, trees and prepared statements
            rank(needs)
    for block in range(0, len(patients), BLOCK):
        for row, (_, rank, count, _) in zip(rows, methods, strict=True):
            for at in range(block, min(block + BLOCK, count)):
                if sum(row.timings_us) > BUDGET_US:
                    break
                start = time.perf_counter_ns()
                got = rank(patients[at])
                row.timings_us.append((time.perf_counter_ns() - start) / 1000)
                row.same += got == exact[at]
                row.checked += 1
    return rows


def run_size(size: int, database: str | None, rng: random.Random) -> list[Row]:
    doctors = make_doctors(rng, size)
    patients = make_patients(rng, QUERIES)
    columns = Columns(doctors)
    scan = numpy_scan(columns)
    exact = [scan(needs) for needs in patients]
    start = time.perf_counter()
    index = DoctorIndex(doctors)
    for needs in patients:  # builds the tree of every combination of needs met below
        index._fitting_for(needs)
    built_ms = 1000 * (time.perf_counter() - start)
    sites = sum(len(d.sites()) for d in doctors)
    note = f"{sites:,} sites; index built once per territory in {built_ms:,.0f} ms"
    # The numpy scan is the reference: check it against the index's own full scan on a few.
    for needs, expected in zip(patients[:20], exact, strict=False):
        if [c.doctor_id for c in index.rank_full_scan(needs, K, MAX_KM)] != expected:
            sys.exit("the numpy full scan disagrees with DoctorIndex.rank_full_scan")
    methods = [
        ("naive geodesic loop", naive(doctors), SLOW_QUERIES[size], ""),
        ("numpy full scan", scan, SCAN_QUERIES[size], ""),
    ]
    try:
        methods.append(("scikit-learn BallTree", ball_tree(columns), QUERIES, ""))
    except ImportError:
        print("BallTree skipped: pip install -e '.[bench]' for scikit-learn", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        if database:
            try:
                ranker = stack.enter_context(postgis(database, doctors))
                methods.append(("PostGIS <-> GiST", ranker, QUERIES, ""))
            except Exception as error:  # noqa: BLE001 - the bench reports why and goes on
                print(f"PostGIS skipped: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        methods.append(("ours (DoctorIndex.rank)", ours_ranker(index), QUERIES, note))
        return measure(size, methods, patients, exact)


def ours_ranker(index: DoctorIndex) -> Ranker:
    def rank(needs: PatientNeeds) -> list[int]:
        return [c.doctor_id for c in index.rank(needs, K, MAX_KM)]

    return rank


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'doctors':>8} | {'method':<24} | {'queries':>7} | {'median':>10} | {'p95':>10} |"
        f" {'x ours':>7} | same ten as exact"
    )
    print(header)
    print("-" * len(header))
    for size in dict.fromkeys(r.size for r in rows):
        group = [r for r in rows if r.size == size]
        ours = statistics.median(group[-1].timings_us)
        for r in group:
            median = statistics.median(r.timings_us)
            print(
                f"{size:>8,} | {r.method:<24} | {len(r.timings_us):>7} | {fmt(median):>10} |"
                f" {fmt(percentile(r.timings_us, 95)):>10} | {median / ours:>7.1f} |"
                f" {r.same}/{r.checked} {r.note}"
            )


def fmt(us: float) -> str:
    return f"{us:,.0f} µs" if us < 10_000 else f"{us / 1000:,.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="postgresql+psycopg://postgres@127.0.0.1/test")
    parser.add_argument("--no-database", action="store_true", help="skip PostGIS")
    args = parser.parse_args()
    rng = random.Random(20261123)  # same doctors and patients on every run
    rows: list[Row] = []
    for size in SIZES:
        print(f"{size:,} doctors…", file=sys.stderr, flush=True)
        rows += run_size(size, None if args.no_database else args.database, rng)
    print(f"k={K}, within {MAX_KM:g} km, needs filters applied; per-query latency")
    print_table(rows)


if __name__ == "__main__":
    main()
