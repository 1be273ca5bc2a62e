"""Dispatcher throughput: messages per second through the fake Twilio server (no rate limit)
and through the local outbox, on SQLite and PostgreSQL, with 1 and 2 dispatcher processes.

    .venv/bin/python bench/dispatch.py [--messages 2000] [--postgres URL]

Each run queues fresh messages, starts `orientation dispatch --once` processes and reports the
rate between the first and the last message sent (process start-up excluded) and the wall time.
Only 127.0.0.1 is contacted. PostgreSQL runs in a private schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models import Channel, Message, Territory  # noqa: E402
from models.engine import make_engine, make_sessionmaker  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from notifications.outbox import queue_message  # noqa: E402
from tests.fakes.twilio_server import FakeTwilio, TwilioServer  # noqa: E402

ORIENTATION = str(Path(sys.executable).parent / "orientation")


def prepare(url: str, n: int) -> None:
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    with sessions() as session:
        territory = Territory(name="CPTS Bench", slug=f"bench-{uuid.uuid4().hex[:6]}")
        session.add(territory)
        session.flush()
        for i in range(n):
            queue_message(
                session,
                territory_id=territory.id,
                channel=Channel.SMS,
                recipient=f"+336{i:08d}",
                body=f"Bonjour, votre demande {i} est enregistrée.",
                purpose="bench",
                idempotency_key=f"bench-{uuid.uuid4().hex}",
            )
        session.commit()
    engine.dispose()


def measure(
    url: str, n: int, processes: int, provider: str, fake: FakeTwilio
) -> tuple[float, float]:
    prepare(url, n)
    env = {
        **os.environ,
        "ORIENTATION_DATABASE_URL": url,
        "ORIENTATION_INSTANCE_PATH": tempfile.mkdtemp(prefix="bench-dispatch-"),
        "ORIENTATION_SECRET_KEY": "bench-" + "x" * 40,
        "ORIENTATION_BASE_URL": "http://127.0.0.1:5000",
        "ORIENTATION_SMS_PROVIDER": provider,
        "ORIENTATION_TWILIO_ACCOUNT_SID": fake.account_sid,
        "ORIENTATION_TWILIO_AUTH_TOKEN": fake.auth_token,
        "ORIENTATION_TWILIO_FROM": "+33700000001",
        "ORIENTATION_TWILIO_API_BASE": fake.api_base,
        "ORIENTATION_SMS_RATE_LIMIT": "0",
    }
    before = len(fake.messages)
    started = time.perf_counter()
    running = [
        subprocess.Popen([ORIENTATION, "dispatch", "--once"], env=env, stdout=subprocess.DEVNULL)
        for _ in range(processes)
    ]
    for process in running:
        if process.wait(timeout=600) != 0:
            raise SystemExit("a dispatcher failed")
    wall = time.perf_counter() - started
    engine = make_engine(url)
    with engine.connect() as connection:
        first, last = connection.execute(
            select(func.min(Message.sent_at), func.max(Message.sent_at))
        ).one()
        unsent = connection.scalar(select(func.count()).where(Message.sent_at.is_(None)))
    engine.dispose()
    if unsent:
        raise SystemExit(f"{unsent} messages were not sent")
    if provider == "twilio":
        bodies = Counter(m.body for m in fake.messages[before:])
        if len(fake.messages) - before != n or max(bodies.values()) != 1:
            raise SystemExit("a message was sent twice or lost")
    span = (last - first).total_seconds() if isinstance(first, type(last)) else wall
    return n / max(span, 1e-6), wall


def postgres_schema(base: str) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    url = make_url(base).set(drivername="postgresql+psycopg")
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_schema(base: str, schema: str) -> None:
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "ORIENTATION_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1/test"
        ),
        help="a PostgreSQL on 127.0.0.1 ('' to skip)",
    )
    args = parser.parse_args()
    host = make_url(args.postgres).host if args.postgres else None
    if args.postgres and host not in ("127.0.0.1", "localhost", None):
        raise SystemExit("the bench only talks to 127.0.0.1")

    rows = []
    with TwilioServer() as fake, tempfile.TemporaryDirectory() as tmp:
        backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
        for backend in backends:
            for provider in ("twilio", "outbox"):
                for processes in (1, 2):
                    if backend == "sqlite":
                        url, schema = f"sqlite:///{tmp}/{uuid.uuid4().hex}.sqlite3", ""
                    else:
                        url, schema = postgres_schema(args.postgres)
                    try:
                        rate, wall = measure(url, args.messages, processes, provider, fake)
                    finally:
                        if schema:
                            drop_schema(args.postgres, schema)
                    rows.append((backend, provider, processes, rate, wall))
                    print(f"  {backend} {provider} x{processes}: {rate:,.0f}/s", file=sys.stderr)

    label = {"twilio": "Twilio (fake, local HTTP)", "outbox": "local outbox"}
    print(f"\n{args.messages} messages per run, no rate limit; target >= 200/s through Twilio\n")
    print("| database | provider | processes | messages/s | wall time (s, incl. start-up) |")
    print("|---|---|---:|---:|---:|")
    for backend, provider, processes, rate, wall in rows:
        print(f"| {backend} | {label[provider]} | {processes} | {rate:,.0f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
