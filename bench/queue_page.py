"""Queue page server time at 100,000 requests, on SQLite and PostgreSQL.

Compares our keyset queue (one short index range per open status and priority, merged) with
the naive way (one ORDER BY over every open request, OFFSET pagination), and times the whole
page through the Flask app (login session, query, audit entry, template). Prints the query
plans. Talks only to 127.0.0.1; stops by itself in a few minutes.

    .venv/bin/python bench/queue_page.py [--requests 100000]
        [--postgres postgresql+psycopg://postgres@127.0.0.1/test]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, insert, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from geo.communes import gazetteer  # noqa: E402
from models import OPEN_STATUSES, Person, Reason, Request, Role, Source, Status, utcnow  # noqa: E402
from models.engine import make_engine, make_sessionmaker  # noqa: E402
from models.migrate import load_communes, upgrade  # noqa: E402
from orientation import Settings, create_app  # noqa: E402
from orientation.services import accounts  # noqa: E402
from orientation.services.queue import (  # noqa: E402
    Cursor,
    QueueFilters,
    queue_counts,
    queue_page,
)
from orientation.services.territories import TerritoryInput, add_territory  # noqa: E402

PASSWORD = "bench-password-42-long"  # noqa: S105 - a throwaway bench account
STATUS_MIX = [  # a year or two of a busy CPTS: most requests are finished
    (Status.ORIENTED, 45),
    (Status.CLOSED, 20),
    (Status.WITHDRAWN, 5),
    (Status.RECEIVED, 5),
    (Status.ELIGIBLE, 8),
    (Status.OUT_OF_TERRITORY, 2),
    (Status.IN_PROGRESS, 5),
    (Status.DOCTORS_CONTACTED, 5),
    (Status.PROPOSED, 5),
]


def _timed(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    fn()  # warm caches
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def _seed(engine: Engine, n: int) -> tuple[int, str]:
    upgrade(engine)
    load_communes(engine, list(gazetteer().by_insee.values()))
    session = make_sessionmaker(engine)()
    territory = add_territory(
        session,
        gazetteer(),
        TerritoryInput(name="CPTS Bench", insee_codes=["59017", "59431", "59143"]),
    )
    other = add_territory(session, gazetteer(), TerritoryInput(name="Autre", insee_codes=["59350"]))
    session.flush()
    user = accounts.create_user(
        session,
        email="bench@example.org",
        full_name="Bench",
        role=Role.COORDINATOR,
        password=PASSWORD,
        territory_id=territory.id,
    )
    session.commit()
    rng = random.Random(5)
    statuses = [s for s, w in STATUS_MIX for _ in range(w)]
    now = utcnow()
    batch = 5000
    for start in range(0, n, batch):
        rows = []
        for i in range(start, min(n, start + batch)):
            rows.append(
                {
                    "territory_id": territory.id if i % 10 else other.id,
                    "reference": f"B{i:09d}",
                    "status": rng.choice(statuses),
                    "source": rng.choice(list(Source)),
                    "reason": Reason.GP_LEFT,
                    "postal_code": "59280",
                    "commune_insee": rng.choice(["59017", "59431", "59143"]),
                    "need_home_visits": rng.random() < 1 / 15,
                    "is_priority": rng.random() < 1 / 3,
                    "created_at": now - timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60)),
                }
            )
        with engine.begin() as connection:
            connection.execute(insert(Request), rows)
            ids = connection.scalars(
                select(Request.id).where(Request.reference.in_([r["reference"] for r in rows]))
            ).all()
            connection.execute(
                insert(Person),
                [
                    {
                        "territory_id": territory.id,
                        "request_id": rid,
                        "first_name": "Camille",
                        "last_name": "Durand",
                        "birth_date": None,
                    }
                    for rid in ids
                ],
            )
    # VACUUM as autovacuum would after such a load: it sets PostgreSQL's visibility map, without
    # which no count can be read from an index alone.
    vacuum = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(vacuum))
    session.close()
    return territory.id, user.email


def _plan(engine: Engine, sql: str, params: dict[str, object]) -> str:
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.execute(text(prefix + sql), params).all()
    return "\n".join("    " + " ".join(str(c) for c in row) for row in rows)


def _bench(label: str, url: str, n: int, tmp: Path) -> list[tuple[str, str, float, float]]:
    engine = make_engine(url)
    print(f"[{label}] seeding {n:,} requests...", flush=True)
    territory_id, email = _seed(engine, n)
    session = make_sessionmaker(engine)()
    now = utcnow()
    results = []

    def ours(after: Cursor | None = None, filters: QueueFilters | None = None) -> object:
        return queue_page(session, territory_id, now, filters, after)

    # A cursor deep in the queue: the last row of the non-priority open requests, minus 50.
    deep = session.execute(
        select(Request.is_priority, Request.created_at, Request.id)
        .where(Request.territory_id == territory_id, Request.status.in_(OPEN_STATUSES))
        .order_by(Request.is_priority.desc(), Request.created_at, Request.id)
        .offset(20_000)
        .limit(1)
    ).first()
    deep_cursor = Cursor(*deep) if deep else None
    open_count = session.scalar(
        select(text("count(*)"))
        .select_from(Request)
        .where(Request.territory_id == territory_id, Request.status.in_(OPEN_STATUSES))
    )

    def naive(offset: int) -> object:
        return session.scalars(
            select(Request)
            .where(Request.territory_id == territory_id, Request.status.in_(OPEN_STATUSES))
            .order_by(Request.is_priority.desc(), Request.created_at, Request.id)
            .offset(offset)
            .limit(50)
        ).all()

    results.append((label, "ours: first page (service)", *_timed(ours, 30)))
    results.append((label, "ours: page after 20,000 rows", *_timed(lambda: ours(deep_cursor), 30)))
    home = QueueFilters(need="home_visits")
    results.append((label, "ours: filter home visits", *_timed(lambda: ours(None, home), 30)))
    counts = _timed(lambda: queue_counts(session, territory_id), 30)
    results.append((label, "ours: all counts (one round trip)", *counts))
    results.append((label, "naive: first page (one ORDER BY)", *_timed(lambda: naive(0), 30)))
    results.append((label, "naive: OFFSET 20,000", *_timed(lambda: naive(20_000), 30)))

    app = create_app(
        Settings(
            env="development",
            instance_path=tmp / f"instance-{label}",
            database_url=url,
            secret_key="bench-" + "k" * 40,
            base_url="http://127.0.0.1",
            testing=True,
            extra={"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False},
        )
    )
    client = app.test_client()
    client.post("/connexion", data={"email": email, "password": PASSWORD})
    assert client.get("/espace/demandes").status_code == 200
    page = _timed(lambda: client.get("/espace/demandes"), 30)
    results.append((label, "ours: whole queue page (HTTP, render, audit)", *page))
    app.extensions["orientation.engine"].dispose()

    branch = (
        "SELECT id FROM requests WHERE territory_id = :t AND status = 'RECEIVED' "
        "AND is_priority = true ORDER BY created_at, id LIMIT 51"
    )
    print(f"\n[{label}] {open_count:,} open requests in the territory; plan of one branch:")
    print(_plan(engine, branch, {"t": territory_id}))
    naive_sql = (
        "SELECT id FROM requests WHERE territory_id = :t AND status IN ('RECEIVED','ELIGIBLE',"
        "'OUT_OF_TERRITORY','IN_PROGRESS','DOCTORS_CONTACTED','PROPOSED') "
        "ORDER BY is_priority DESC, created_at, id LIMIT 50 OFFSET 20000"
    )
    alerts = (
        "SELECT count(*) FROM requests WHERE territory_id = :t AND cascade_state = 'exhausted' "
        "AND status IN ('RECEIVED','ELIGIBLE','OUT_OF_TERRITORY','IN_PROGRESS',"
        "'DOCTORS_CONTACTED','PROPOSED')"
    )
    print(f"[{label}] plan of the alert count:")
    print(_plan(engine, alerts, {"t": territory_id}))
    per_status = (
        "SELECT status, count(*) FROM requests WHERE territory_id = :t AND status IN "
        "('RECEIVED','ELIGIBLE','OUT_OF_TERRITORY','IN_PROGRESS','DOCTORS_CONTACTED','PROPOSED') "
        "GROUP BY status"
    )
    print(f"[{label}] plan of the counts per status:")
    print(_plan(engine, per_status, {"t": territory_id}))
    print(f"[{label}] plan of the naive query:")
    print(_plan(engine, naive_sql, {"t": territory_id}))
    session.close()
    engine.dispose()
    return results


@contextmanager
def _postgres_schema(base: str) -> Iterator[str]:
    schema = f"bench_queue_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1/test")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        results += _bench("sqlite", f"sqlite:///{tmp / 'bench.sqlite3'}", args.requests, tmp)
        if args.postgres:
            if make_url(args.postgres).host not in (None, "127.0.0.1", "localhost"):
                sys.exit("This bench only talks to a local PostgreSQL (127.0.0.1).")
            with _postgres_schema(args.postgres) as url:
                results += _bench("postgresql", url, args.requests, tmp)
    print(f"\nQueue at {args.requests:,} requests (30 runs each, milliseconds)")
    print(f"{'database':<11} {'what':<46} {'median':>8} {'p95':>8}")
    for label, what, median, p95 in results:
        print(f"{label:<11} {what:<46} {median:>8.2f} {p95:>8.2f}")


if __name__ == "__main__":
    main()
