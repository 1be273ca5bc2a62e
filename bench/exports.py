"""Exports and indicators over 100,000 requests, on SQLite and PostgreSQL: time and memory.

    .venv/bin/python bench/exports.py [--requests 100000] [--pg postgresql+psycopg://...]

Prints one table: the streamed CSV and XLSX exports against the naive way (load every row,
then write), with time and peak Python memory (tracemalloc) and the growth of the process's
resident memory; and the indicators page's computation. Targets (issue 6): CSV under 5 s and
under 150 MB peak, indicators under 300 ms. Only talks to 127.0.0.1; a PostgreSQL schema of its
own is created and dropped.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, selectinload  # noqa: E402

from models import Person, Request, RequestEvent, Territory  # noqa: E402
from models.engine import make_engine  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from orientation.services import exports, indicators  # noqa: E402

STATUSES = ["eligible", "in_progress", "proposed", "oriented", "closed", "out_of_territory"]
SOURCES = ["questionnaire", "phone", "professional", "api"]
COMMUNES = [("59017", "59280"), ("59431", "59130"), ("59143", "59160"), ("59350", "59000")]


def seed(engine: Engine, n: int) -> Territory:
    rng = random.Random(6)
    with Session(engine) as session:
        territory = Territory(name="CPTS Bench", slug=f"bench-{uuid.uuid4().hex[:6]}")
        session.add(territory)
        session.commit()
        tid = territory.id
    start = datetime(2017, 1, 1, tzinfo=UTC)
    batch = 10_000
    with engine.begin() as connection:
        for base in range(0, n, batch):
            requests, persons, events = [], [], []
            for i in range(base + 1, min(n, base + batch) + 1):
                created = start + timedelta(minutes=rng.randint(0, 10 * 365 * 24 * 60))
                status = rng.choice(STATUSES)
                insee, cp = rng.choice(COMMUNES)
                requests.append({
                    "id": i, "territory_id": tid, "reference": f"B{i:09d}", "status": status,
                    "source": rng.choice(SOURCES), "source_tag": "", "phone": f"+336{i:08d}",
                    "email": f"p{i}@example.org", "preferred_channel": "sms", "best_time": "",
                    "street": f"{i} rue de l'Église", "postal_code": cp, "commune_insee": insee,
                    "location_precision": "commune", "reason": "gp_left", "reason_detail": "",
                    "already_sees_gp": False, "need_home_visits": rng.random() < 0.07,
                    "need_reduced_mobility": False, "need_chronic_followup": False,
                    "language": "", "css_ame": rng.random() < 0.15, "is_priority": False,
                    "comment": "", "agrees_to_survey": True, "closed_reason": "",
                    "created_at": created, "updated_at": created, "is_demo": False,
                    "needs_follow_up": False,
                })  # fmt: skip
                for k in range(rng.choice([1, 1, 2, 3])):
                    persons.append({
                        "territory_id": tid, "request_id": i, "position": k,
                        "first_name": "Hélène", "last_name": f"Lefèvre{i}",
                        "birth_date": date(rng.randint(1930, 2024), rng.randint(1, 12), 1),
                        "ald": rng.random() < 0.1,
                    })  # fmt: skip
                if status in ("proposed", "oriented"):
                    at = created + timedelta(days=rng.randint(1, 60))
                    events.append(_event(tid, i, at, "proposed"))
                    if status == "oriented":
                        events.append(_event(tid, i, at + timedelta(days=rng.randint(1, 30)),
                                             "oriented"))  # fmt: skip
            connection.execute(insert(Request), requests)
            connection.execute(insert(Person), persons)
            if events:
                connection.execute(insert(RequestEvent), events)
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT setval('requests_id_seq', :n)"), {"n": n})
            connection.execute(text("ANALYZE"))
    with Session(engine) as session:
        found = session.get(Territory, tid)
        assert found is not None
        session.expunge(found)
        return found


def _event(tid: int, rid: int, at: datetime, to: str) -> dict[str, Any]:
    return {"territory_id": tid, "request_id": rid, "at": at, "kind": "status",
            "actor_label": "bench", "from_status": "", "to_status": to, "note": ""}  # fmt: skip


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(fn: Callable[[], int]) -> tuple[float, float, float, int]:
    """Seconds, tracemalloc peak (MB), growth of the peak RSS (MB), rows."""
    rss_before = _rss_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    rows = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak, _rss_mb() - rss_before, rows


def timed(fn: Callable[[], int], trace: bool) -> tuple[float, float, float, int]:
    """Seconds without tracemalloc (it slows Python down several-fold), then memory apart."""
    rss_before = _rss_mb()
    t0 = time.perf_counter()
    rows = fn()
    seconds = time.perf_counter() - t0
    if not trace:  # XLSX: the resident-memory growth only, to keep the bench short
        return seconds, float("nan"), _rss_mb() - rss_before, rows
    _, peak, rss, _ = measure(fn)
    return seconds, peak, max(rss, 0.0), rows


def run(engine: Engine, n: int) -> list[tuple[str, str, float, float, float, int]]:
    territory = seed(engine, n)
    filters = exports.ExportFilter(
        start=datetime(2000, 1, 1, tzinfo=UTC), end=datetime(2100, 1, 1, tzinfo=UTC)
    )
    ids = [territory.id]
    db = engine.dialect.name

    def csv_streamed() -> int:
        with Session(engine) as session, tempfile.TemporaryFile() as out:
            for chunk in exports.csv_chunks(exports.request_rows(session, ids, filters)):
                out.write(chunk)
            return out.tell()

    def xlsx_streamed() -> int:
        with Session(engine) as session, tempfile.TemporaryFile() as out:
            exports.write_xlsx(exports.request_rows(session, ids, filters), out)
            return out.tell()

    def csv_naive() -> int:
        # The naive way: every request and person in memory, then one big string.
        with Session(engine) as session:
            requests = session.scalars(
                select(Request).where(Request.territory_id == territory.id)
                .options(selectinload(Request.persons))
            ).all()  # fmt: skip
            buffer = io.StringIO()
            writer = csv.writer(buffer, delimiter=";")
            for r in requests:
                writer.writerow([r.reference, r.created_at, r.status, r.phone, r.email,
                                 ", ".join(p.last_name for p in r.persons)])  # fmt: skip
            return len(buffer.getvalue().encode())

    def indicator_page() -> int:
        with Session(engine) as session:
            figures = indicators.compute(
                session, [territory], indicators.Period(date(2017, 1, 1), date(2026, 12, 31)),
                datetime(2027, 1, 1, tzinfo=UTC),
            )  # fmt: skip
            return figures.requests

    results = []
    cases = [("CSV streamed (ours)", csv_streamed), ("XLSX write-only (ours)", xlsx_streamed),
             ("CSV naive (load all)", csv_naive)]  # fmt: skip
    for name, fn in cases:
        seconds, peak, rss, size = timed(fn, trace="XLSX" not in name)
        results.append((db, name, seconds, peak, rss, size))
        _print(results[-1])
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        count = indicator_page()
        runs.append(time.perf_counter() - t0)
    results.append((db, "indicators, ten years (median of 5)", statistics.median(runs),
                    float("nan"), float("nan"), count))  # fmt: skip
    _print(results[-1])
    return results


def _print(row: tuple[str, str, float, float, float, int]) -> None:
    db, name, seconds, peak, rss, size = row
    print(f"{db:<11}{name:<38}{seconds:>9.3f}{peak:>12.1f}{rss:>9.1f}{size:>13,}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1/test")
    args = parser.parse_args()
    results: list[tuple[str, str, float, float, float, int]] = []
    print(f"{args.requests:,} requests (py peak: tracemalloc; RSS +MB: growth of peak RSS)")
    print(f"{'database':<11}{'what':<38}{'seconds':>9}{'py peak MB':>12}"
          f"{'RSS +MB':>9}{'bytes/rows':>13}", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.sqlite3")
        upgrade(engine)
        results += run(engine, args.requests)
        engine.dispose()
    url = make_url(args.pg)
    if url.host not in (None, "127.0.0.1", "localhost"):
        sys.exit("the bench only talks to 127.0.0.1")
    schema = f"bench_exports_{uuid.uuid4().hex[:8]}"
    admin = make_engine(args.pg)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL: say so, keep the SQLite figures
        print(f"PostgreSQL skipped: {exc.__class__.__name__}: {exc}".splitlines()[0])
    else:
        scoped = url.update_query_dict({"options": f"-csearch_path={schema}"})
        engine = make_engine(scoped.render_as_string(hide_password=False))
        try:
            upgrade(engine)
            results += run(engine, args.requests)
        finally:
            engine.dispose()
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()

    print("targets: CSV < 5 s and < 150 MB peak; indicators < 0.3 s")


if __name__ == "__main__":
    main()
