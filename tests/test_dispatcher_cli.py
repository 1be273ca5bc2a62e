"""`orientation dispatch`: --once sends what is due; the loop stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from models import Channel, Message, MessageStatus, Territory
from notifications.loop import PeriodicJob, run_forever
from notifications.outbox import queue_message
from tests.fakes.twilio_server import FakeTwilio
from tests.test_dispatcher_processes import ORIENTATION, dispatcher_env


def queue_one(session: Session, territory: Territory) -> Message:
    message = queue_message(
        session,
        territory_id=territory.id,
        channel=Channel.EMAIL,
        recipient="jeanne@example.org",
        subject="Votre demande",
        body="Bonjour",
        purpose="acknowledgement",
        idempotency_key="ack-1",
    )
    session.commit()
    return message


def test_dispatch_once_sends_what_is_due_through_the_local_outbox(
    runner: Any, session: Session, make_territory: Callable[..., Territory]
) -> None:
    message = queue_one(session, make_territory())
    result = runner.invoke(args=["dispatch", "--once"])
    assert result.exit_code == 0, result.output
    assert "sent 1, rescheduled 0, failed 0" in result.output
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.DELIVERED  # type: ignore[union-attr]


def test_the_dispatch_loop_sends_then_stops_cleanly_on_sigterm(
    session: Session,
    make_territory: Callable[..., Territory],
    database_url: str,
    twilio_server: FakeTwilio,
    tmp_path: Path,
) -> None:
    message = queue_one(session, make_territory())
    process = subprocess.Popen(
        [ORIENTATION, "dispatch", "--tick", "0.2"],
        env=dispatcher_env(database_url, twilio_server, tmp_path),
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        session.expire_all()
        if session.get(Message, message.id).status is MessageStatus.DELIVERED:  # type: ignore[union-attr]
            break
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "Dispatcher stopped." in output
    session.expire_all()
    assert session.get(Message, message.id).status is MessageStatus.DELIVERED  # type: ignore[union-attr]


def test_a_failing_periodic_job_does_not_stop_the_others() -> None:
    import threading

    stop = threading.Event()
    runs: list[str] = []

    def broken() -> None:
        runs.append("broken")
        raise RuntimeError("database restarting")

    def counting() -> None:
        runs.append("ok")
        if runs.count("ok") == 3:
            stop.set()

    run_forever([PeriodicJob("broken", 0, broken), PeriodicJob("ok", 0, counting)], 0.01, stop)
    assert runs.count("ok") == 3 and runs.count("broken") == 3
