"""Benchmark: questionnaire submissions per second, p50/p95: ours, a bare handler, hello-world.

    .venv/bin/python bench/intake_submit.py [--seconds 5] [--runs 3] [--generator wrk|python]
        [--pg postgresql+psycopg://postgres@127.0.0.1/test] [--no-sqlite] [--instructions]

For each database (SQLite file; PostgreSQL in a private schema, dropped afterwards) it starts
three gunicorn servers (3 sync workers each, 127.0.0.1 only): the full path (CSRF, rate limit
counted, honeypot, idempotency key, validation, offline geocoding, territory check, request,
persons, events, outbox and audit rows, one commit, the 303 to the confirmation); a bare Flask
handler doing similar work (phone and e-mail validation, postal-code lookup, prepared-polygon
check, one INSERT); and hello-world Flask, the ceiling of the machine. After a warm-up it loads
them in turn (ours, bare, hello, ours...), --runs times each, with 20 concurrent connections,
and prints the best run with the spread, p50/p95, the CPU the three workers spent per request,
the load generator's own CPU, and the ratios to the bare handler and to hello-world; then the
full path in-process (Flask's test client, one client). About a minute and a half per database.

With --instructions (Debian's valgrind), it also counts the instructions of 100 submissions made
in-process to ours and to the bare handler (callgrind, user space only): unlike requests per
second, a figure the load of a shared machine does not move. About two minutes more per database.

The load generator is wrk (Debian package `wrk`; a Lua script gives every POST its own
idempotency key and one of 20 session cookie + CSRF token pairs fetched beforehand): written in
C, it takes a small share of the 2 cores that the workers need. Without wrk (or with
--generator python) an asyncio generator in Python does the same, at several times wrk's CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

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
    from models.engine import make_engine
    from orientation.services.contact import normalise_email, normalise_phone

    # The application's engine settings (SQLite: WAL, synchronous=NORMAL, busy timeout): with
    # SQLite's defaults every commit would wait for an fsync, and the comparison would flatter us.
    engine = make_engine(os.environ["BENCH_DATABASE_URL"])
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


def hello_app():  # type: ignore[no-untyped-def]
    """Hello-world Flask: what gunicorn and Flask cost alone, the ceiling on this machine."""
    from flask import Flask

    app = Flask("hello")

    @app.get("/hello")
    def hello() -> str:
        return "Hello, World!"

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


@dataclass(frozen=True)
class Target:
    """One server under load: what to send it and which status codes mean success."""

    label: str
    port: int
    path: str
    method: str  # GET for hello-world, POST for the two submission handlers
    visitor: bool  # needs a session cookie and a CSRF token, as a visitor who loaded the form
    workers: tuple[int, ...]  # the gunicorn workers' pids, to read the CPU they spend


@dataclass
class Run:
    rate: float  # requests per second
    p50: float  # ms
    p95: float  # ms
    n: int
    generator_cpu: float  # share of one core used by the load generator
    worker_cpu_ms: float = 0.0  # CPU the gunicorn workers spent per request, ms


def visitor_sessions(port: int, path: str, count: int) -> list[tuple[str, str]]:
    """`count` real visitors: GET the form, keep the session cookie and the CSRF token."""
    import urllib.request

    sessions = []
    for _ in range(count):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as response:
            cookie = response.headers.get("Set-Cookie", "").split(";")[0]
            html = response.read().decode()
        match = re.search(r'name="csrf_token" value="([^"]+)"', html)
        sessions.append((cookie, match.group(1) if match else ""))
    return sessions


# wrk calls request() for every request, so each POST gets its own idempotency key (the run's
# prefix, the thread, a counter) and the next of the visitors' cookie + CSRF token pairs.
WRK_SCRIPT = """
local sessions = {%(sessions)s}
local body, prefix, path, method = %(body)s, %(prefix)s, %(path)s, %(method)s
local counter, threads = 0, 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function request()
  if method == "GET" then return wrk.format("GET", path) end
  counter = counter + 1
  local headers = {["Content-Type"] = "application/x-www-form-urlencoded"}
  local data = body .. "&nonce=" .. prefix .. "-" .. tid .. "-" .. counter
  if #sessions > 0 then
    local s = sessions[counter %% #sessions + 1]
    headers["Cookie"] = s[1]
    data = data .. "&csrf_token=" .. s[2]
  end
  return wrk.format("POST", path, headers, data)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-result %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95),
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _lua(value: str) -> str:
    """A Lua string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_wrk(target: Target, seconds: float, sessions: list[tuple[str, str]]) -> Run:
    """CLIENTS connections from one wrk thread for `seconds`; wrk's CPU read from rusage."""
    import resource

    script = WRK_SCRIPT % {
        "sessions": ", ".join(f"{{{_lua(c)}, {_lua(quote(t))}}}" for c, t in sessions),
        "body": _lua(urlencode(FORM)),
        "prefix": _lua(uuid.uuid4().hex[:12]),
        "path": _lua(target.path),
        "method": _lua(target.method),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = worker_cpu(target.workers)
    try:
        output = subprocess.run(
            ["wrk", "-t1", f"-c{CLIENTS}", f"-d{max(round(seconds), 1)}s", "--timeout", "10s",
             "-s", file.name, f"http://127.0.0.1:{target.port}{target.path}"],
            capture_output=True, text=True,
        )  # fmt: skip
    finally:
        os.unlink(file.name)
    worker_seconds = worker_cpu(target.workers) - cpu
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    found = re.search(r"wrk-result (\d+) (\d+) (\d+) (\d+) (\d+)", output.stdout)
    if output.returncode or not found:
        raise SystemExit(f"wrk failed:\n{output.stdout}{output.stderr}")
    requests, duration_us, p50_us, p95_us, errors = (int(x) for x in found.groups())
    if errors:
        raise SystemExit(f"{errors} failed requests (errors or statuses >= 400) on {target.label}")
    elapsed = duration_us / 1e6
    wrk_cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Run(requests / elapsed, p50_us / 1000, p95_us / 1000, requests, wrk_cpu / elapsed,
               worker_seconds * 1000 / max(requests, 1))  # fmt: skip


# The fallback generator: asyncio on raw sockets, one pre-encoded request per POST, about a
# fifth of a core at 1,000 requests per second where wrk needs far less.


async def _fetch(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    data = await reader.read()  # gunicorn's sync workers close the connection after a response
    writer.close()
    return data


def _request(target: Target, body: str, cookie: str) -> bytes:
    if target.method == "GET":
        return (
            f"GET {target.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
    encoded = body.encode()
    return (
        f"POST {target.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(encoded)}\r\n"
        + (f"Cookie: {cookie}\r\n" if cookie else "")
        + "\r\n"
    ).encode() + encoded


async def _client(target: Target, session: tuple[str, str], until: float, out: list[float]) -> None:
    cookie, token = session
    base = urlencode(dict(FORM, csrf_token=token) if token else FORM)
    while time.perf_counter() < until:
        raw = _request(target, f"{base}&nonce={uuid.uuid4().hex}", cookie)
        start = time.perf_counter()
        response = await _fetch(target.port, raw)
        elapsed = time.perf_counter() - start
        if response[9:12] not in (b"200", b"201", b"303"):
            raise SystemExit(f"unexpected {response[:12]!r} from {target.label}")
        out.append(elapsed)


def load_python(target: Target, seconds: float, sessions: list[tuple[str, str]]) -> Run:
    latencies: list[float] = []
    clients = [sessions[i % len(sessions)] if sessions else ("", "") for i in range(CLIENTS)]
    cpu, workers = time.process_time(), worker_cpu(target.workers)
    start = time.perf_counter()

    async def main() -> None:
        until = start + seconds
        await asyncio.gather(*(_client(target, s, until, latencies) for s in clients))

    asyncio.run(main())
    elapsed = time.perf_counter() - start
    run = summarise(sorted(latencies), elapsed, (time.process_time() - cpu) / elapsed)
    run.worker_cpu_ms = (worker_cpu(target.workers) - workers) * 1000 / max(run.n, 1)
    return run


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


def worker_cpu(pids: tuple[int, ...]) -> float:
    """User + system CPU seconds the processes have used so far (Linux /proc)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    factory: str, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int, tuple[int, ...]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(WORKERS), "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning", f"bench.intake_submit:{factory}()"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.time() + 30
    while time.time() < deadline:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        workers = tuple(int(pid) for pid in children.read_text().split())
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            if len(workers) == WORKERS:
                return process, port, workers
        except OSError:
            pass
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


# --- instructions per submission (valgrind), a figure the machine's noise does not move ----

# Only the submissions run inside functools.reduce are counted (callgrind's --toggle-collect):
# not the imports, the app's start or the warm-up.
COUNTED, WARM_UP = 100, 30


def count_submissions(label: str) -> None:
    """Child of `instructions`, under valgrind: COUNTED submissions to one app, in-process."""
    import functools
    import io

    app = full_app() if label == "ours" else bare_app()
    path = f"/cpts/{SLUG}/demande" if label == "ours" else "/bare"
    form = dict(FORM)
    cookie = ""
    if label == "ours":
        page = app.test_client().get(path)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
        form["csrf_token"] = token.group(1) if token else ""
        cookie = page.headers.get("Set-Cookie", "").split(";")[0]
    base = urlencode(form)
    statuses: list[str] = []

    def submit(*_: object) -> None:
        # A WSGI call as gunicorn makes it, without the test client's own work.
        body = f"{base}&nonce={uuid.uuid4().hex}".encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "HTTP_COOKIE": cookie,
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr, "wsgi.version": (1, 0),
            "wsgi.multithread": False, "wsgi.multiprocess": True, "wsgi.run_once": False,
        }  # fmt: skip
        response = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
        b"".join(response)

    for _ in range(WARM_UP):
        submit()
    functools.reduce(lambda _, __: submit(), range(COUNTED), None)
    if any(status[:3] not in ("201", "303") for status in statuses):
        raise SystemExit(f"failed submissions: {set(statuses)}")


def instructions(env: dict[str, str], label: str) -> float | None:
    """Millions of instructions per submission (user space: not the kernel's work, not the
    database server's), or None without valgrind."""
    if not shutil.which("valgrind"):
        return None
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
             f"--callgrind-out-file={out}", sys.executable, __file__, "--count", label],
            cwd=ROOT, env=dict(env, PYTHONHASHSEED="0"), check=True, capture_output=True,
        )  # fmt: skip
        found = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
    if not found or not int(found.group(1)):
        return None  # a Python without symbols: nothing was counted
    return int(found.group(1)) / COUNTED / 1e6


SERVERS = {  # label: (gunicorn factory, path, method, visitor)
    "ours": ("full_app", f"/cpts/{SLUG}/demande", "POST", True),
    "bare": ("bare_app", "/bare", "POST", False),
    "hello": ("hello_app", "/hello", "GET", False),
}


def run(
    name: str, url: str, options: argparse.Namespace, rows: list[tuple[str, ...]],
    counts: list[tuple[str, float | None, float | None]], verdicts: list[str],
) -> None:  # fmt: skip
    """The three servers up at once, measured in turn (ours, bare, hello, ours...) so that the
    load other work puts on the machine weighs on all alike; each row is the best run."""
    prepare(url)
    env = dict(
        os.environ,
        ORIENTATION_DATABASE_URL=url,
        BENCH_DATABASE_URL=url,
        ORIENTATION_SECRET_KEY="bench-" + "k" * 40,
        ORIENTATION_INSTANCE_PATH=tempfile.mkdtemp(prefix="intake-bench-"),
        PYTHONPATH=str(ROOT),
    )
    load = load_wrk if options.generator == "wrk" else load_python
    processes, targets = [], []
    runs: dict[str, list[Run]] = {label: [] for label in SERVERS}
    try:
        for label, (factory, path, method, visitor) in SERVERS.items():
            process, port, workers = serve(factory, env)
            processes.append(process)
            targets.append(Target(label, port, path, method, visitor, workers))
        sessions = {
            t.label: visitor_sessions(t.port, t.path, CLIENTS) if t.visitor else [] for t in targets
        }
        for target in targets:
            load(target, 2, sessions[target.label])  # warm-up: imports, connections
        for _ in range(options.runs):
            for target in targets:
                runs[target.label].append(load(target, options.seconds, sessions[target.label]))
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
    best = {label: max(results, key=lambda r: r.rate) for label, results in runs.items()}
    for label, results in runs.items():
        rates = [r.rate for r in results]
        b = best[label]
        rows.append((
            name, f"{label}, gunicorn", f"{b.rate:,.0f}", f"{min(rates):,.0f}–{max(rates):,.0f}",
            f"{b.p50:.1f}", f"{b.p95:.1f}", f"{b.worker_cpu_ms:.2f}", f"{b.generator_cpu:.0%}",
            f"{b.rate / best['bare'].rate:.2f}", f"{b.rate / best['hello'].rate:.2f}",
        ))  # fmt: skip
    verdicts.append(verdict(name, best["ours"], best["bare"]))
    solo = in_process(env, options.seconds / 2)
    rows.append((name, "ours, in-process, 1 client", f"{solo.rate:,.0f}", "", f"{solo.p50:.1f}",
                 f"{solo.p95:.1f}", f"{1000 / solo.rate:.2f}", "", "", ""))  # fmt: skip
    if options.instructions:
        with ThreadPoolExecutor(2) as pool:  # one valgrind per core
            ours, bare = pool.map(lambda label: instructions(env, label), ("ours", "bare"))
        counts.append((name, ours, bare))
    requests, messages = count_rows(url)
    assert requests == messages, "every request has its acknowledgement queued"


LEGEND = """\
ours: the whole questionnaire POST; bare: similar work and one INSERT; hello: hello-world Flask.
worker CPU: user + system time of the 3 workers per request (in-process: wall time per request).
generator CPU: share of one core the load generator used (it shares the machine with the servers).
/bare, /hello: best requests per second over the bare handler's and over hello-world's."""


# #3's target, measured where the bare handler served 2,000 submissions a second on SQLite and
# 1,300 on PostgreSQL: 1,000 and 600 for the full path, p95 under 30 ms. Rates scale with the
# machine, so the rates are also checked as shares of the bare handler measured alongside.
TARGET_RATE = {"SQLite": (1000, 2000), "PostgreSQL": (600, 1300)}
TARGET_P95_MS = 30.0


def verdict(name: str, ours: Run, bare: Run) -> str:
    target, issue_bare = TARGET_RATE[name]
    share, wanted = ours.rate / bare.rate, target / issue_bare

    def met(ok: bool) -> str:
        return "met" if ok else "NOT met"

    return (
        f"{name}: {ours.rate:,.0f}/s (target {target:,}/s: {met(ours.rate >= target)}); "
        f"{share:.2f} of bare (target {wanted:.2f}: {met(share >= wanted)}); "
        f"p95 {ours.p95:.1f} ms (target < {TARGET_P95_MS:g} ms: {met(ours.p95 < TARGET_P95_MS)})"
    )


def uptime() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load averages {one:.2f}, {five:.2f}, {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one run")
    parser.add_argument("--runs", type=int, default=3, help="runs per server (best is shown)")
    parser.add_argument(
        "--generator", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument("--pg", default=os.environ.get("ORIENTATION_TEST_DATABASE_URL", ""))
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument(
        "--instructions", action="store_true",
        help="also count instructions per submission under valgrind (about 2 minutes more)",
    )  # fmt: skip
    parser.add_argument("--count", choices=("ours", "bare"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.count:
        count_submissions(options.count)
        return
    counts: list[tuple[str, float | None, float | None]] = []
    rows: list[tuple[str, ...]] = []
    verdicts: list[str] = []
    before = uptime()
    if not options.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="intake-bench-") as folder:
            run("SQLite", f"sqlite:///{folder}/bench.sqlite3", options, rows, counts, verdicts)
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
            run(
                "PostgreSQL", url.render_as_string(hide_password=False), options, rows, counts,
                verdicts,
            )  # fmt: skip
        finally:
            with admin.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
    header = ("database", "server", "req./s (best)", "spread", "p50 ms", "p95 ms",
              "worker CPU ms/req.", "generator CPU", "/bare", "/hello")  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n{CLIENTS} concurrent connections ({options.generator}), gunicorn {WORKERS} sync"
          f" workers, {options.runs} runs of {options.seconds:g} s per server, {os.cpu_count()}"
          f" CPUs; {before} at the start, {uptime()} at the end")  # fmt: skip
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(LEGEND)
    print(
        "\nTarget of #3 (1,000/s on SQLite and 600/s on PostgreSQL where bare made 2,000 and"
        " 1,300; p95 < 30 ms), and the same rates as shares of bare on this machine:"
    )
    for line in verdicts:
        print(line)
    if counts:
        print("\nInstructions per submission, in-process WSGI call (valgrind --tool=callgrind; user"
              " space only: not the kernel's work nor the database server's):")  # fmt: skip
        for name, ours, bare in counts:
            if ours is None or bare is None:
                print(f"{name}: not counted (valgrind found no CPython symbols)")
            else:
                print(f"{name}: ours {ours:.2f} M, bare {bare:.2f} M, bare/ours {bare / ours:.2f}")


if __name__ == "__main__":
    main()
