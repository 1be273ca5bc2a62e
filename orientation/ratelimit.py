"""The rate-limit counters of `memory://`: limits' MemoryStorage, without a thread per hit.

limits' MemoryStorage expires counters from a threading.Timer of 10 ms that it starts again on
the next hit once the last one has run: at a few hundred submissions per second that is a new
thread on nearly every hit, whose start (waiting for the thread to be scheduled) and wake-ups
cost a gunicorn worker more than counting itself. Expiry does not need a thread: `get` already
ignores an expired counter, so this storage only sweeps expired counters (to free their memory)
from the hit itself, at most once a second.

`memory://` in ORIENTATION_RATELIMIT_STORAGE_URL means this storage (create_app maps it);
`redis://` is untouched.
"""

from __future__ import annotations

import time
from typing import Any

from limits.storage import MemoryStorage

SCHEME = "orientation-memory"
URI = f"{SCHEME}://"
SWEEP_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    """Counters in this process's memory, expired counters swept inline once a second."""

    STORAGE_SCHEME = [SCHEME]  # registered with limits by this class statement

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._next_sweep = 0.0

    # MemoryStorage calls its private __schedule_expiry before each change of a counter; this
    # replaces it (tests/test_hardening.py checks that hits start no thread).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def storage_uri(configured: str) -> str:
    """The URI handed to Flask-Limiter for ORIENTATION_RATELIMIT_STORAGE_URL."""
    return URI if configured == "memory://" else configured
