"""Benchmark: questionnaire submissions per second, p50/p95, ours vs a bare Flask handler.

    .venv/bin/python bench/intake_submit.py [--seconds 5] [--runs 3] [--generators 1]
        [--pg postgresql+psycopg://postgres@127.0.0.1/test] [--no-sqlite]

For each database (SQLite file; PostgreSQL in a private schema, dropped afterwards) it starts two
gunicorn servers (3 sync workers each, 127.0.0.1 only): the full path (CSRF, rate limit counted,
idempotency key, validation, offline geocoding, territory check, request, persons, events,
outbox and audit rows, one commit) and a bare Flask handler doing similar work (phone and e-mail
validation, postal-code lookup, prepared-polygon check, one INSERT). After a warm-up, it loads
them in turn, --runs times each, with 20 concurrent clients from an asyncio generator, and
prints the best run with the spread, p50/p95, the generator's CPU and the ratio ours/bare; then
the full path in-process (Flask's test client, one client). About a minute per database.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS = 20
WORKERS = int(os.environ.get("BENCH_WORKERS", "3"))  # 3 in the table; other values to explore
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
# asyncio on raw sockets, one pre-encoded request per POST: a fraction of the CPU that
# http.client in threads needs, so the generator (sharing the 2 cores with the server) is not
# what limits the bare handler. Each generator process reports the CPU it used.


async def _fetch(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    data = await reader.read()  # gunicorn's sync workers close the connection after a response
    writer.close()
    return data


def _post(path: str, body: str, cookie: str) -> bytes:
    encoded = body.encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(encoded)}\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    ).encode() + encoded


async def _client(port: int, path: str, full: bool, until: float, out: list[float]) -> None:
    form, cookie = dict(FORM), ""
    if full:  # a real visitor: GET the form, keep the session cookie and the CSRF token
        page = await _fetch(port, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head, _, html = page.partition(b"\r\n\r\n")
        found = re.search(rb"Set-Cookie: ([^;]+)", head)
        cookie = found.group(1).decode() if found else ""
        match = re.search(rb'name="csrf_token" value="([^"]+)"', html)
        form["csrf_token"] = match.group(1).decode() if match else ""
    base = urlencode(form)
    while time.perf_counter() < until:
        raw = _post(path, f"{base}&nonce={uuid.uuid4().hex}", cookie)
        start = time.perf_counter()
        response = await _fetch(port, raw)
        elapsed = time.perf_counter() - start
        if response[9:12] not in (b"201", b"303"):
            raise SystemExit(f"unexpected {response[:12]!r} from {path}")
        out.append(elapsed)


def _generator(args: tuple[int, str, bool, float, int]) -> tuple[list[float], float]:
    port, path, full, until, clients = args
    latencies: list[float] = []
    cpu = time.process_time()

    async def main() -> None:
        await asyncio.gather(*(_client(port, path, full, until, latencies) for _ in range(clients)))

    asyncio.run(main())
    return latencies, time.process_time() - cpu


@dataclass
class Run:
    rate: float  # submissions per second
    p50: float  # ms
    p95: float  # ms
    n: int
    generator_cpu: float  # share of one core used by the load generator


def load(port: int, path: str, full: bool, seconds: float, generators: int) -> Run:
    """CLIENTS concurrent clients for `seconds`, spread over `generators` processes."""
    with multiprocessing.Pool(generators) as pool:
        until = time.perf_counter() + seconds
        start = time.perf_counter()
        parts = pool.map(
            _generator, [(port, path, full, until, CLIENTS // generators)] * generators
        )
        elapsed = time.perf_counter() - start
    latencies = sorted(x for part, _ in parts for x in part)
    return summarise(latencies, elapsed, sum(cpu for _, cpu in parts) / elapsed)


def summarise(latencies: list[float], elapsed: float, generator_cpu: float = 0.0) -> Run:
    if not latencies:
        return Run(0.0, 0.0, 0.0, 0, generator_cpu)
    p95 = latencies[max(int(len(latencies) * 0.95) - 1, 0)]
    return Run(
        len(latencies) / elapsed,
        statistics.median(latencies) * 1000,
        p95 * 1000,
        len(latencies),
        generator_cpu,
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


def in_process(env: dict[str, str], seconds: float) -> Run:
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


def run(name: str, url: str, options: argparse.Namespace, rows: list[tuple[str, ...]]) -> None:
    """Both servers up at once, measured in turn (ours, bare, ours...) so that the load other
    work puts on the machine weighs on both alike; each row is the best run, with the spread."""
    prepare(url)
    env = dict(
        os.environ,
        ORIENTATION_DATABASE_URL=url,
        BENCH_DATABASE_URL=url,
        ORIENTATION_SECRET_KEY="bench-" + "k" * 40,
        ORIENTATION_INSTANCE_PATH=tempfile.mkdtemp(prefix="intake-bench-"),
        PYTHONPATH=str(ROOT),
    )
    servers = {
        "ours": (f"/cpts/{SLUG}/demande", True, serve("full_app", env)),
        "bare": ("/bare", False, serve("bare_app", env)),
    }
    runs: dict[str, list[Run]] = {"ours": [], "bare": []}
    try:
        for path, full, (_, port) in servers.values():
            load(port, path, full, 1.5, options.generators)  # warm-up: imports, connections
        for _ in range(options.runs):
            for label, (path, full, (_, port)) in servers.items():
                runs[label].append(load(port, path, full, options.seconds, options.generators))
    finally:
        for _, _, (process, _) in servers.values():
            process.terminate()
            process.wait(timeout=10)
    best = {label: max(results, key=lambda r: r.rate) for label, results in runs.items()}
    for label, results in runs.items():
        rates = [r.rate for r in results]
        b = best[label]
        rows.append((
            name, f"{label}, gunicorn", f"{b.rate:,.0f}", f"{min(rates):,.0f}–{max(rates):,.0f}",
            f"{b.p50:.1f}", f"{b.p95:.1f}", f"{b.generator_cpu:.0%}",
            f"{b.rate / best['bare'].rate:.2f}" if best["bare"].rate else "",
        ))  # fmt: skip
    solo = in_process(env, options.seconds / 2)
    rows.append((name, "ours, in-process, 1 client", f"{solo.rate:,.0f}", "", f"{solo.p50:.1f}",
                 f"{solo.p95:.1f}", "", ""))  # fmt: skip
    requests, messages = count_rows(url)
    assert requests == messages, "every request has its acknowledgement queued"


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load averages {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of one run")
    parser.add_argument("--runs", type=int, default=3, help="runs per server (best is shown)")
    parser.add_argument("--generators", type=int, default=1, help="load generator processes")
    parser.add_argument("--pg", default=os.environ.get("ORIENTATION_TEST_DATABASE_URL", ""))
    parser.add_argument("--no-sqlite", action="store_true")
    options = parser.parse_args()
    rows: list[tuple[str, ...]] = []
    before = uptime()
    if not options.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="intake-bench-") as folder:
            run("SQLite", f"sqlite:///{folder}/bench.sqlite3", options, rows)
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
            run("PostgreSQL", url.render_as_string(hide_password=False), options, rows)
        finally:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    header = ("database", "server", "subm./s (best)", "spread", "p50 ms", "p95 ms",
              "generator CPU", "ours/bare")  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{CLIENTS} concurrent clients, gunicorn {WORKERS} sync workers, {options.runs} runs"
          f" of {options.seconds:g} s per server, {options.generators} generator process(es),"
          f" {os.cpu_count()} CPUs; {before} at the start, {uptime()} at the end")  # fmt: skip
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print("generator CPU: share of one core the load generator used (it shares the machine);"
          " ours/bare: best submissions/s of ours over the bare handler's")  # fmt: skip


if __name__ == "__main__":
    main()
