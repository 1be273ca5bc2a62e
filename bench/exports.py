"""Exports and indicators over 100,000 requests, on SQLite and PostgreSQL: time and memory.

    .venv/bin/python bench/exports.py [--requests 100000] [--pg postgresql+psycopg://...]

Seeds ten years of requests (persons, status events, and the columns the intake and the
workflow store on each request) with bulk inserts (executemany on SQLite, COPY on PostgreSQL),
then runs each case in a forked child process and prints one table: seconds, the child's peak
resident memory (the whole process: interpreter, libraries and the case), rows. Ours next to
the other ways. Exports: every request and person loaded as ORM objects then written (naive);
the XLSX through openpyxl's write-only mode (ours) and through XlsxWriter's constant_memory
mode. Indicators: the service alone and the whole page through Flask's test client (login,
service, audit entry, template with its charts), each the median of five warm runs; the main
pass of the previous way (persons and status events grouped per request on every call, with
the two indexes it read); every request with its persons and events loaded then counted in
Python (naive). Targets (issue 6): CSV under 5 s and under 150 MB peak, indicators page under
300 ms. The load averages are printed before and after: the machine is shared. Only talks to
127.0.0.1; a PostgreSQL schema of its own is created and dropped. Needs `pip install -e
'.[bench]'` (XlsxWriter).
"""

from __future__ import annotations

import argparse
import csv
import io
import multiprocessing
import os
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import (  # noqa: E402
    Date,
    Engine,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, selectinload  # noqa: E402

from models import (  # noqa: E402
    LocationPrecision,
    Person,
    Reason,
    Request,
    RequestEvent,
    Role,
    Source,
    Status,
    Territory,
)
from models.engine import make_engine  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from orientation import Settings, create_app  # noqa: E402
from orientation.services import accounts, exports, indicators  # noqa: E402
from orientation.services.bulk import insert_many  # noqa: E402
from orientation.services.household import Household  # noqa: E402
from orientation.services.workflow import reached_columns  # noqa: E402

EMAIL, PASSWORD = "bench@example.org", "bench-password-42-long"  # noqa: S105 - throwaway
PREVIOUS_INDEXES = {
    "ix_persons_criteria": "request_id, birth_date, ald",
    "ix_request_events_reached": "request_id, to_status, kind, at",
}
STATUSES = [Status.ELIGIBLE, Status.IN_PROGRESS, Status.PROPOSED, Status.ORIENTED, Status.CLOSED,
            Status.OUT_OF_TERRITORY]  # fmt: skip
SOURCES = [Source.QUESTIONNAIRE, Source.PHONE, Source.PROFESSIONAL, Source.API]
COMMUNES = [("59017", "59280"), ("59431", "59130"), ("59143", "59160"), ("59350", "59000")]
PERIOD = indicators.Period(date(2017, 1, 1), date(2026, 12, 31))
NOW = datetime(2027, 1, 1, tzinfo=UTC)
Row = tuple[str, str, float, float, int]


def seed(engine: Engine, n: int) -> int:
    """n requests over ten years, 1 to 3 persons each, events to eligible and beyond."""
    rng = random.Random(6)
    with Session(engine) as session:
        territory = Territory(name="CPTS Bench", slug=f"bench-{uuid.uuid4().hex[:6]}")
        session.add(territory)
        session.commit()
        tid = territory.id
    start = datetime(2017, 1, 1, tzinfo=UTC)
    with Session(engine) as session:
        for base in range(0, n, 20_000):
            requests, persons, events = [], [], []
            for i in range(base + 1, min(n, base + 20_000) + 1):
                created = start + timedelta(minutes=rng.randint(0, 10 * 365 * 24 * 60))
                status = rng.choice(STATUSES)
                insee, cp = rng.choice(COMMUNES)
                css_ame = rng.random() < 0.15
                request = {
                    "id": i, "territory_id": tid, "reference": f"B{i:09d}", "status": status,
                    "source": rng.choice(SOURCES), "phone": f"+336{i:08d}",
                    "email": f"p{i}@example.org", "street": f"{i} rue de l'Église",
                    "postal_code": cp, "commune_insee": insee, "reason": Reason.GP_LEFT,
                    "need_home_visits": rng.random() < 0.07, "css_ame": css_ame,
                    "agrees_to_survey": True, "created_at": created, "updated_at": created,
                }  # fmt: skip
                requests.append(request)
                household = []
                for k in range(rng.choice([1, 1, 2, 3])):
                    born = date(rng.randint(1930, 2016), rng.randint(1, 12), 1)
                    ald = rng.random() < 0.1
                    household.append((born, ald))
                    persons.append({
                        "territory_id": tid, "request_id": i, "position": k,
                        "first_name": "Hélène", "last_name": f"Lefèvre{i}",
                        "birth_date": born, "ald": ald,
                    })  # fmt: skip
                # What the intake and the workflow store on the request, as they would.
                request.update(Household.of(household, created.date()).columns(css_ame))
                at = created + timedelta(days=rng.randint(0, 5), hours=rng.randint(1, 20))
                path = [Status.OUT_OF_TERRITORY] if status is Status.OUT_OF_TERRITORY else [
                    Status.ELIGIBLE, *{Status.PROPOSED: [Status.PROPOSED],
                                       Status.ORIENTED: [Status.PROPOSED, Status.ORIENTED]
                                       }.get(status, [])]  # fmt: skip
                for step in path:
                    if step is Status.PROPOSED:
                        at += timedelta(days=rng.randint(1, 60), hours=rng.randint(0, 23))
                    elif step is Status.ORIENTED:
                        at += timedelta(days=rng.randint(1, 30), hours=rng.randint(0, 23))
                    events.append(_event(tid, i, at, step))
                    request.update(reached_columns(step, at))
            insert_many(session, Request, _complete(requests))
            insert_many(session, Person, persons)
            insert_many(session, RequestEvent, events)
        if engine.dialect.name == "postgresql":
            session.execute(text("SELECT setval('requests_id_seq', :n)"), {"n": n})
        session.commit()
    with Session(engine) as session:
        accounts.create_user(session, email=EMAIL, full_name="Bench", role=Role.COORDINATOR,
                             password=PASSWORD, territory_id=tid)  # fmt: skip
        session.commit()
    with engine.begin() as connection:
        # What the previous way of computing the indicators read (dropped by migration 0010).
        for index, columns in PREVIOUS_INDEXES.items():
            table = "persons" if "persons" in index else "request_events"
            connection.execute(text(f"CREATE INDEX {index} ON {table} ({columns})"))
    # As autovacuum would after such a load (PostgreSQL reads an index alone only once the
    # visibility map is set); these tables only: a bare ANALYZE walks every schema.
    vacuum = "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("requests", "persons", "request_events"):
            connection.execute(text(f"{vacuum} {table}"))
    return tid


def previous_main_pass(session: Session, tid: int) -> int:
    """The indicators' main pass as it was before migration 0010, for comparison: the
    persons (criteria at the date of the request) and the status events (statuses reached,
    first proposal and orientation) grouped per request and joined to the period's requests;
    the delays' percentiles by percentile_disc on PostgreSQL, sorted in Python on SQLite."""
    dialect = session.get_bind().dialect.name
    in_period = (Request.territory_id == tid, Request.created_at >= PERIOD.start,
                 Request.created_at < PERIOD.end)  # fmt: skip

    def years_before(years: int) -> Any:
        if dialect == "sqlite":
            return func.date(Request.created_at, f"-{years} years")
        interval = literal_column(f"interval '{years} years'")
        return cast(func.timezone("UTC", Request.created_at) - interval, Date)

    def flag(condition: Any) -> Any:
        return func.max(case((condition, 1), else_=0))

    persons = (
        select(Person.request_id.label("rid"), func.count().label("n"),
               flag(Person.birth_date <= years_before(70)).label("elderly"),
               flag(Person.birth_date > years_before(6)).label("child"),
               flag(Person.ald.is_(True)).label("ald"))
        .join(Request, Request.id == Person.request_id).where(*in_period)
        .group_by(Person.request_id).subquery()
    )  # fmt: skip
    to, status_kind = RequestEvent.to_status, RequestEvent.kind == "status"
    events = (
        select(RequestEvent.request_id.label("rid"),
               flag(to == "eligible").label("eligible"),
               flag(to == "out_of_territory").label("out"),
               *(func.min(case((and_(status_kind, to == s), RequestEvent.at))).label(s)
                 for s in ("proposed", "oriented")))
        .join(Request, Request.id == RequestEvent.request_id)
        .where(*in_period, to.in_(["eligible", "out_of_territory", "proposed", "oriented"]))
        .group_by(RequestEvent.request_id).subquery()
    )  # fmt: skip

    def total(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    counts = [func.count(), func.sum(persons.c.n)] + [
        total(persons.c[key] == 1) for key in ("elderly", "child", "ald")
    ]
    base = select(*counts).select_from(Request).outerjoin(persons, persons.c.rid == Request.id)
    days = [
        (func.julianday(events.c[s]) - func.julianday(Request.created_at)) if dialect == "sqlite"
        else func.extract("epoch", events.c[s] - Request.created_at) / 86400.0
        for s in ("proposed", "oriented")
    ]  # fmt: skip
    if dialect == "postgresql":
        percentiles = [func.percentile_disc(p).within_group(d) for d in days for p in (0.5, 0.9)]
        row = session.execute(
            base.add_columns(total(events.c.eligible == 1), *percentiles)
            .outerjoin(events, events.c.rid == Request.id).where(*in_period)
        ).one()  # fmt: skip
    else:
        row = session.execute(base.where(*in_period)).one()
        read = select(events.c.eligible, *days).select_from(Request)
        values = session.execute(read.join(events, events.c.rid == Request.id).where(*in_period))
        sorted(v for _e, v, _o in values if v is not None)
    return int(row[0])


def _complete(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every NOT NULL column of a request (COPY does not apply the models' defaults)."""
    defaults = {"source_tag": "", "preferred_channel": "sms", "best_time": "",
                "location_precision": LocationPrecision.COMMUNE, "reason_detail": "",
                "already_sees_gp": False, "need_reduced_mobility": False,
                "need_chronic_followup": False, "language": "",
                "is_priority": False, "comment": "", "closed_reason": "", "cascade_state": "",
                "is_demo": False, "needs_follow_up": False, "survey_answered": False,
                "reached_eligible": False, "reached_out_of_territory": False,
                "first_proposed_at": None, "oriented_at": None}  # fmt: skip
    return [{**defaults, **row} for row in rows]


def _event(tid: int, rid: int, at: datetime, to: Status) -> dict[str, Any]:
    return {"territory_id": tid, "request_id": rid, "at": at, "kind": "status",
            "actor_label": "bench", "from_status": "", "to_status": to.value,
            "note": ""}  # fmt: skip


def in_child(fn: Callable[[], int | tuple[float, int]]) -> tuple[float, float, int]:
    """Seconds, peak RSS (MB) of a forked child that runs only this case, and rows. A case
    that times itself returns (seconds, rows)."""
    reader, writer = multiprocessing.Pipe(duplex=False)

    def child() -> None:
        t0 = time.perf_counter()
        out = fn()
        seconds, rows = out if isinstance(out, tuple) else (time.perf_counter() - t0, out)
        writer.send((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rows))

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    result = reader.recv()
    process.join()
    return result


def run(engine: Engine, n: int) -> list[Row]:
    engine.dispose()  # each child opens its own connections
    t0 = time.perf_counter()

    # Seeded in a child too: the parent stays small, so every case's child starts small.
    def seeded() -> tuple[float, int]:
        tid = seed(engine, n)
        return time.perf_counter() - t0, tid

    seconds, _, tid = in_child(seeded)
    db = engine.dialect.name
    print(f"{db:<11}{'seed (bulk inserts)':<40}{seconds:>9.2f}{'':>10}{n:>9,}", flush=True)
    filters = exports.ExportFilter(start=PERIOD.start, end=PERIOD.end)

    def export(fmt: str, pseudonymised: bool = False) -> Callable[[], int]:
        def case() -> int:
            with Session(engine) as session, tempfile.TemporaryFile() as out:
                rows = exports.request_rows(session, [tid], filters, pseudonymised=pseudonymised)
                if fmt == "csv":
                    for chunk in exports.csv_chunks(rows):
                        out.write(chunk)
                else:
                    exports.write_xlsx(rows, out)
            return exports.count_requests(Session(engine), [tid], filters)

        return case

    def xlsxwriter_case() -> int:
        # The same rows through XlsxWriter in constant_memory mode (rows flushed as written),
        # the other maintained XLSX writer, to compare with openpyxl's write-only mode.
        import xlsxwriter

        with Session(engine) as session, tempfile.TemporaryFile() as out:
            rows = exports.request_rows(session, [tid], filters)
            workbook = xlsxwriter.Workbook(out, {
                "constant_memory": True, "strings_to_formulas": False,
                "strings_to_urls": False, "tmpdir": tempfile.gettempdir(),
            })  # fmt: skip
            sheet = workbook.add_worksheet("requests")
            for number, row in enumerate(rows):
                sheet.write_row(number, 0, row)
            workbook.close()
            return number

    def csv_naive() -> int:
        # Every request and person as ORM objects, then one big string.
        with Session(engine) as session:
            requests = session.scalars(
                select(Request).where(Request.territory_id == tid)
                .options(selectinload(Request.persons)).order_by(Request.id)
            ).all()  # fmt: skip
            buffer = io.StringIO()
            writer = csv.writer(buffer, delimiter=";")
            for r in requests:
                writer.writerow([
                    exports.neutralise(v) for v in (
                        r.reference, r.created_at.isoformat(timespec="minutes"), r.status.value,
                        r.source.value, r.street, r.phone, r.email,
                        ", ".join(f"{p.first_name} {p.last_name}" for p in r.persons),
                    )
                ])  # fmt: skip
            buffer.getvalue().encode()
            return len(requests)

    def indicators_ours() -> tuple[float, int]:
        # The median of five runs (the first one warms the caches, as a busy page's would be).
        runs = []
        for _ in range(5):
            with Session(engine) as session:
                territory = session.get(Territory, tid)
                assert territory is not None
                t0 = time.perf_counter()
                figures = indicators.compute(session, [territory], PERIOD, NOW)
                runs.append(time.perf_counter() - t0)
        return statistics.median(runs), figures.requests

    def indicators_page() -> tuple[float, int]:
        # The whole page as a coordinator gets it: login session, service, audit entry and
        # template with its SVG charts (120 months), through Flask's test client.
        app = create_app(Settings(
            env="development", instance_path=Path(tempfile.mkdtemp()),
            database_url=engine.url.render_as_string(hide_password=False),
            secret_key="bench-" + "k" * 40, base_url="http://127.0.0.1", testing=True,
            extra={"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": False},
        ))  # fmt: skip
        client = app.test_client()
        client.post("/connexion", data={"email": EMAIL, "password": PASSWORD})
        query = {"du": PERIOD.first.isoformat(), "au": PERIOD.last.isoformat()}
        runs = []
        for _ in range(6):  # the first run warms the caches, then the median of five
            t0 = time.perf_counter()
            page = client.get("/espace/indicateurs", query_string=query)
            runs.append(time.perf_counter() - t0)
            assert page.status_code == 200, page.status_code
        html = page.get_data(as_text=True)
        shown = int(html.split("</strong> foyers")[0].rsplit("<strong>", 1)[1])
        return statistics.median(runs[1:]), shown

    def indicators_previous() -> tuple[float, int]:
        # The main pass before migration 0010: the persons and the status events grouped per
        # request on every call, joined to the requests (median of three).
        runs = []
        for _ in range(3):
            with Session(engine) as session:
                t0 = time.perf_counter()
                count = previous_main_pass(session, tid)
                runs.append(time.perf_counter() - t0)
        return statistics.median(runs), count

    def indicators_naive() -> int:
        # Every request with its persons and events, counted in Python (as the tests check).
        with Session(engine) as session:
            requests = session.scalars(
                select(Request).where(Request.territory_id == tid)
                .options(selectinload(Request.persons), selectinload(Request.events))
            ).all()  # fmt: skip
            delays = sorted(
                (min(e.at for e in r.events if e.to_status == "proposed") - r.created_at)
                .total_seconds() / 86400
                for r in requests if any(e.to_status == "proposed" for e in r.events)
            )  # fmt: skip
            _ = (sum(len(r.persons) for r in requests), delays[len(delays) // 2] if delays else 0)
            return len(requests)

    results: list[Row] = []
    cases: list[tuple[str, Callable[[], int]]] = [
        ("CSV, streamed (ours)", export("csv")),
        ("CSV, load all then write (naive)", csv_naive),
        ("CSV pseudonymised, streamed (ours)", export("csv", pseudonymised=True)),
        ("XLSX, openpyxl write-only (ours)", export("xlsx")),
        ("XLSX, XlsxWriter constant_memory", xlsxwriter_case),
    ]
    for name, fn in cases:
        seconds, peak, rows = in_child(fn)
        results.append((db, name, seconds, peak, rows))
        _print(results[-1])
    timed: list[tuple[str, Callable[[], int | tuple[float, int]]]] = [
        ("indicators, 10 years, service (ours)", indicators_ours),
        ("indicators page, HTTP (ours)", indicators_page),
        ("indicators, main pass (previous)", indicators_previous),
        ("indicators, load all (naive)", indicators_naive),
    ]
    for name, timed_case in timed:
        seconds, peak, rows = in_child(timed_case)
        results.append((db, name, seconds, peak, rows))
        _print(results[-1])
    return results


def _print(row: Row) -> None:
    db, name, seconds, peak, rows = row
    print(f"{db:<11}{name:<40}{seconds:>9.3f}{peak:>10.0f}{rows:>9,}", flush=True)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1/test")
    args = parser.parse_args()
    url = make_url(args.pg)
    if url.host not in (None, "127.0.0.1", "localhost"):
        sys.exit("the bench only talks to 127.0.0.1")
    print(f"{args.requests:,} requests over ten years; {os.cpu_count()} cores, {_load()}")
    print(f"{'database':<11}{'what':<40}{'seconds':>9}{'peak MB':>10}{'rows':>9}", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.sqlite3")
        upgrade(engine)
        run(engine, args.requests)
        engine.dispose()
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
            run(engine, args.requests)
        finally:
            engine.dispose()
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
    print(f"after: {_load()}")
    print("peak MB: the child process's peak resident memory (about 100 MB is the interpreter")
    print("and libraries). Targets: CSV < 5 s and < 150 MB; indicators page < 0.3 s.")


if __name__ == "__main__":
    main()
