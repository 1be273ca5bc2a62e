"""Real dispatcher processes: killed in the middle of a batch, or two at once, never send a
message twice (counted at the fake Twilio server) and lose none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, Message, MessageStatus, Territory
from notifications.outbox import queue_message
from tests.fakes.twilio_server import FakeTwilio

ORIENTATION = str(Path(sys.executable).parent / "orientation")


def dispatcher_env(database_url: str, fake: FakeTwilio, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "ORIENTATION_DATABASE_URL": database_url,
        "ORIENTATION_INSTANCE_PATH": str(tmp_path / "instance"),
        "ORIENTATION_SECRET_KEY": "test-secret-" + "x" * 40,
        "ORIENTATION_BASE_URL": "http://localhost",
        "ORIENTATION_SMS_PROVIDER": "twilio",
        "ORIENTATION_TWILIO_ACCOUNT_SID": fake.account_sid,
        "ORIENTATION_TWILIO_AUTH_TOKEN": fake.auth_token,
        "ORIENTATION_TWILIO_FROM": "+33700000001",
        "ORIENTATION_TWILIO_API_BASE": fake.api_base,
        "ORIENTATION_PROVIDER_TIMEOUT_SECONDS": "1",
        "ORIENTATION_DISPATCH_LEASE_SECONDS": "3",
    }


def queue_many(session: Session, territory: Territory, n: int) -> None:
    for i in range(n):
        queue_message(
            session,
            territory_id=territory.id,
            channel=Channel.SMS,
            recipient=f"+336{i:08d}",
            body=f"Proposition {i}",
            purpose="proposal",
            idempotency_key=f"crash-{i}",
        )
    session.commit()


def statuses(session: Session) -> Counter[MessageStatus]:
    session.expire_all()
    return Counter(session.scalars(select(Message.status)))


def test_a_dispatcher_killed_mid_batch_then_restarted_sends_every_message_exactly_once(
    session: Session,
    make_territory: Callable[..., Territory],
    database_url: str,
    twilio_server: FakeTwilio,
    tmp_path: Path,
) -> None:
    queue_many(session, make_territory(), 12)
    twilio_server.mode, twilio_server.delay = "slow", 0.3
    env = dispatcher_env(database_url, twilio_server, tmp_path)
    first = subprocess.Popen([ORIENTATION, "dispatch", "--once"], env=env)
    deadline = time.monotonic() + 60
    while len(twilio_server.bodies()) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)  # in the middle of a send: Twilio has it, we do not know
    first.wait()
    accepted_before_restart = len(twilio_server.bodies())
    assert 4 <= accepted_before_restart < 12
    assert statuses(session)[MessageStatus.SENDING] > 1  # the in-flight one and the rest

    twilio_server.mode = "ok"
    time.sleep(3.2)  # the lease of the dead dispatcher expires
    restarted = subprocess.run(
        [ORIENTATION, "dispatch", "--once"], env=env, capture_output=True, text=True, timeout=120
    )
    assert restarted.returncode == 0, restarted.stderr
    assert "recovered" in restarted.stdout

    assert Counter(twilio_server.bodies()) == Counter(f"Proposition {i}" for i in range(12))
    assert statuses(session) == Counter({MessageStatus.SENT: 12})
    session.expire_all()
    sids = set(session.scalars(select(Message.provider_message_id)))
    assert sids == {m.sid for m in twilio_server.messages}


def test_two_dispatchers_at_once_never_send_a_message_twice(
    session: Session,
    make_territory: Callable[..., Territory],
    database_url: str,
    twilio_server: FakeTwilio,
    tmp_path: Path,
) -> None:
    queue_many(session, make_territory(), 150)
    twilio_server.mode, twilio_server.delay = "slow", 0.02
    env = dispatcher_env(database_url, twilio_server, tmp_path)
    env["ORIENTATION_DISPATCH_LEASE_SECONDS"] = "60"
    env["ORIENTATION_PROVIDER_TIMEOUT_SECONDS"] = "10"  # a loaded machine is not a Twilio outage
    # One send at a time: about 3 s of work each, so that the two processes surely overlap.
    env["ORIENTATION_DISPATCH_CONCURRENCY"] = "1"
    processes = [
        subprocess.Popen(
            [ORIENTATION, "dispatch", "--once"], env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=180)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    sent_by_each = [int(out.split("sent ")[1].split(",")[0]) for out in outputs]
    assert sum(sent_by_each) == 150 and min(sent_by_each) > 0, outputs
    assert Counter(twilio_server.bodies()) == Counter(f"Proposition {i}" for i in range(150))
    assert statuses(session) == Counter({MessageStatus.SENT: 150})
