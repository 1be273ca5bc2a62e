"""Benchmark: questionnaire submissions per second, p50/p95, ours vs a bare Flask handler.

    .venv/bin/python bench/intake_submit.py [--seconds 6] [--pg postgresql+psycopg://postgres@127.0.0.1/test]

For each database (SQLite file; PostgreSQL in a private schema, dropped afterwards) it measures:
- in-process: the full path through Flask's test client, one client (no network);
- gunicorn, 3 sync workers, 20 concurrent clients over 127.0.0.1: the full path (CSRF, rate
  limit counted, idempotency look-up, validation, offline geocoding, territory check, request,
  persons, events, outbox and audit rows, one commit) and, side by side, a bare Flask handler
  doing similar work (phone and e-mail validation, postal-code lookup, prepared-polygon check,
  one INSERT).
Only 127.0.0.1 is used. Each measurement lasts --seconds; the whole run stops in about a minute.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS = 20
PROCESSES = 4  # load generators: 4 processes x 5 threads = 20 concurrent clients
WORKERS = 3
SLUG = "cpts-bench"
FORM = {
    "persons-0-first_name": "Jeanne",
    "persons-0-last_name": "Martin",
    "persons-0-birth_date": "04/05/1950",
    "phone": "06 12 34 56 78",
    "email": "jeanne.martin@example.fr",
    "preferred_channel": "sms",
    "street": "12 rue de la Gare",
    "postal_code": "59280",
    "commune": "Armentieres",
    "reason": "gp_left",
    "consent": "on",
    "source_tag": "bench",
}


# --- the bare handler, for comparison --------------------------------------------------------


def bare_app():  # type: ignore[no-untyped-def]
    """A Flask app doing the essential work of a submission and nothing else."""
    import sqlalchemy as sa
    from flask import Flask, request

    from geo.communes import gazetteer
    from geo.territory import territory_shape
    from orientation.services.contact import normalise_email, normalise_phone

    engine = sa.create_engine(os.environ["BENCH_DATABASE_URL"])
    table = sa.Table(
        "bench_bare", sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True), sa.Column("phone", sa.String(20)),
        sa.Column("email", sa.String(254)), sa.Column("insee", sa.String(5)),
        sa.Column("inside", sa.Boolean),
    )  # fmt: skip
    shape = territory_shape(frozenset(["59017", "59431", "59143"]))
    gazetteer()
    app = Flask("bare")

    @app.post("/bare")
    def submit() -> tuple[str, int]:
        form = request.form
        phone = normalise_phone(form["phone"])
        email = normalise_email(form["email"])
        commune = gazetteer().find(form["postal_code"], form["commune"])
        if commune is None:
            return "commune", 422
        inside = shape.contains(commune.lat, commune.lon)
        with engine.begin() as connection:
            connection.execute(
                table.insert().values(phone=phone, email=email, insee=commune.insee, inside=inside)
            )
        return "ok", 201

    return app


def full_app():  # type: ignore[no-untyped-def]
    """The real application, with a rate limit high enough for 20 clients on one address."""
    from geo.communes import gazetteer
    from geo.territory import commune_contours
    from orientation import create_app, load_settings

    gazetteer(), commune_contours()  # each worker loads its reference data before serving
    settings = load_settings()
    return create_app(settings.with_overrides(extra={"INTAKE_RATE_LIMIT": "1000000 per minute"}))


# --- database preparation ---------------------------------------------------------------------


def prepare(url: str) -> None:
    import sqlalchemy as sa

    from geo.communes import gazetteer
    from models.engine import make_engine, make_sessionmaker
    from models.migrate import load_communes, upgrade
    from orientation.services.territories import TerritoryInput, add_territory

    engine = make_engine(url)
    upgrade(engine)
    load_communes(engine, list(gazetteer().by_insee.values()))
    with make_sessionmaker(engine)() as session:
        add_territory(session, gazetteer(), TerritoryInput(
            name="CPTS Bench", slug=SLUG, insee_codes=["59017", "59431", "59143"],
        ))  # fmt: skip
        session.commit()
    with engine.begin() as connection:
        connection.execute(sa.text(
            "CREATE TABLE bench_bare (id INTEGER PRIMARY KEY "
            + ("AUTOINCREMENT" if url.startswith("sqlite") else "GENERATED ALWAYS AS IDENTITY")
            + ", phone VARCHAR(20), email VARCHAR(254), insee VARCHAR(5), inside BOOLEAN)"
        ))  # fmt: skip
    engine.dispose()


def count_rows(url: str) -> tuple[int, int]:
    import sqlalchemy as sa

    from models.engine import make_engine

    engine = make_engine(url)
    with engine.connect() as connection:
        requests = connection.execute(sa.text("SELECT count(*) FROM requests")).scalar_one()
        messages = connection.execute(sa.text("SELECT count(*) FROM messages")).scalar_one()
    engine.dispose()
    return requests, messages


# --- load generation ---------------------------------------------------------------------------


def _client(port: str, path: str, full: bool, until: float, out: list[float]) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    form = dict(FORM)
    if full:  # a real visitor: GET the form, keep the session cookie and the CSRF token
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        connection.request("GET", path)
        response = connection.getresponse()
        html = response.read().decode()
        headers["Cookie"] = response.getheader("Set-Cookie", "").split(";")[0]
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        form["csrf_token"] = match.group(1) if match else ""
        connection.close()
    while time.perf_counter() < until:
        form["nonce"] = uuid.uuid4().hex
        body = urlencode(form)
        start = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        connection.close()
        if response.status not in (201, 303):
            print(f"unexpected HTTP {response.status} from {path}", file=sys.stderr)
            return
        out.append(time.perf_counter() - start)


def _generator(args: tuple[str, str, bool, float, int]) -> list[float]:
    port, path, full, until, threads = args
    latencies: list[float] = []
    workers = [
        threading.Thread(target=_client, args=(port, path, full, until, latencies))
        for _ in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return latencies


def load(port: int, path: str, full: bool, seconds: float) -> tuple[float, float, float, int]:
    """(submissions/s, p50 ms, p95 ms, count) for CLIENTS concurrent clients."""
    until = time.perf_counter() + seconds
    start = time.perf_counter()
    with multiprocessing.Pool(PROCESSES) as pool:
        parts = pool.map(
            _generator, [(str(port), path, full, until, CLIENTS // PROCESSES)] * PROCESSES
        )
    elapsed = time.perf_counter() - start
    latencies = sorted(x for part in parts for x in part)
    return summarise(latencies, elapsed)


def summarise(latencies: list[float], elapsed: float) -> tuple[float, float, float, int]:
    if not latencies:
        return 0.0, 0.0, 0.0, 0
    p95 = latencies[int(len(latencies) * 0.95) - 1]
    return (
        len(latencies) / elapsed,
        statistics.median(latencies) * 1000,
        p95 * 1000,
        len(latencies),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(factory: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning", f"bench.intake_submit:{factory}()"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("gunicorn did not start")


def in_process(env: dict[str, str], seconds: float) -> tuple[float, float, float, int]:
    os.environ.update(env)
    app = full_app()
    client = app.test_client()
    page = client.get(f"/cpts/{SLUG}/demande").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    form = dict(FORM, csrf_token=token.group(1) if token else "")
    latencies = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        form["nonce"] = uuid.uuid4().hex
        t0 = time.perf_counter()
        response = client.post(f"/cpts/{SLUG}/demande", data=form)
        latencies.append(time.perf_counter() - t0)
        assert response.status_code == 303, response.status_code
    elapsed = time.perf_counter() - start
    app.extensions["orientation.engine"].dispose()
    return summarise(sorted(latencies), elapsed)


def run(name: str, url: str, seconds: float, rows: list[tuple[str, ...]]) -> None:
    prepare(url)
    env = dict(
        os.environ,
        ORIENTATION_DATABASE_URL=url,
        BENCH_DATABASE_URL=url,
        ORIENTATION_SECRET_KEY="bench-" + "k" * 40,
        ORIENTATION_INSTANCE_PATH=tempfile.mkdtemp(prefix="intake-bench-"),
        PYTHONPATH=str(ROOT),
    )
    for label, factory, path, full in (
        ("ours, gunicorn", "full_app", f"/cpts/{SLUG}/demande", True),
        ("bare handler, gunicorn", "bare_app", "/bare", False),
    ):
        process, port = serve(factory, env)
        try:
            load(port, path, full, 2.0)  # warm-up: imports, connections
            rate, p50, p95, n = load(port, path, full, seconds)
        finally:
            process.terminate()
            process.wait(timeout=10)
        rows.append((name, label, f"{rate:,.0f}", f"{p50:.1f}", f"{p95:.1f}", str(n)))
    rate, p50, p95, n = in_process(env, seconds / 2)
    rows.append((name, "ours, in-process (1 client)", f"{rate:,.0f}", f"{p50:.1f}",
                 f"{p95:.1f}", str(n)))  # fmt: skip
    requests, messages = count_rows(url)
    assert requests == messages, "every request has its acknowledgement queued"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--pg", default=os.environ.get("ORIENTATION_TEST_DATABASE_URL", ""))
    options = parser.parse_args()
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="intake-bench-") as folder:
        run("SQLite", f"sqlite:///{folder}/bench.sqlite3", options.seconds, rows)
    if options.pg:
        import sqlalchemy as sa
        from sqlalchemy.engine import make_url

        schema = f"intake_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(make_url(options.pg).set(drivername="postgresql+psycopg"))
        if admin.url.host not in ("127.0.0.1", "localhost", None):
            raise SystemExit("the benchmark only talks to 127.0.0.1")
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            run("PostgreSQL", url.render_as_string(hide_password=False), options.seconds, rows)
        finally:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    header = ("database", "server", "submissions/s", "p50 ms", "p95 ms", "n")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    load1, _, _ = os.getloadavg()
    print(f"\n{CLIENTS} concurrent clients, gunicorn {WORKERS} sync workers, {options.seconds:g} s,"
          f" {os.cpu_count()} CPUs, load average {load1:.1f} at the end")  # fmt: skip
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    main()
