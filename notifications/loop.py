"""The dispatcher's loop: a short list of periodic jobs, run until SIGTERM or SIGINT.

Other background work (the doctors' cascade) joins by adding a `PeriodicJob` to the list the
CLI builds; nothing runs from a web request.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType

log = logging.getLogger(__name__)


@dataclass
class PeriodicJob:
    name: str
    every_seconds: float  # 0: at every tick
    run: Callable[[], object]
    last_run: float = float("-inf")

    def due(self, now: float) -> bool:
        return now - self.last_run >= self.every_seconds


def run_forever(jobs: Sequence[PeriodicJob], tick_seconds: float, stop: threading.Event) -> None:
    """Run due jobs, sleep a tick, again; return once `stop` is set (after the current job)."""
    while not stop.is_set():
        for job in jobs:
            if stop.is_set():
                break
            now = time.monotonic()
            if not job.due(now):
                continue
            job.last_run = now
            try:
                job.run()
            except Exception:  # one failing job (database restarting...) must not stop the loop
                log.exception("periodic job %s failed; trying again at the next tick", job.name)
        stop.wait(tick_seconds)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM (systemd stop) or SIGINT (Ctrl+C)."""
    stop = threading.Event()

    def _handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping after the current message", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop
