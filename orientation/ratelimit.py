"""Rate limits per client address: each route declares its limits, one hook counts them.

The counting is the `limits` library's: fixed windows, kept in this process's memory or in
Redis (ORIENTATION_RATELIMIT_STORAGE_URL), where every worker draws on one count. This module
only ties it to Flask, for what the service needs and nothing more:

- `@limiter.limit("10 per minute;60 per hour", methods=["POST"])` on a view; the value may be a
  callable read at request time (the intake limit comes from the app's config);
- counted per client address and per route, in a before_request hook registered after the
  CSRF check, so that a forged POST is refused without counting against its address;
- over the limit: 429 with Retry-After; every limited response says X-RateLimit-Limit,
  X-RateLimit-Remaining and X-RateLimit-Reset for the limit closest to running out;
- RATELIMIT_ENABLED=False in the app's config turns counting off (tests);
- when the storage fails (Redis down), requests go through and a warning is logged: a
  patient is not turned away because a counter cannot be reached.

Flask-Limiter did this until December 2026. Its generality (default and application-wide
limits, exemptions, key functions, per-request scopes) was resolved on every limited request
and cost about a twelfth of a questionnaire submission's CPU, and its 4.x line dropped the
single-pass mode we relied on to halve that.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, Response, current_app, g, request
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import FixedWindowRateLimiter, RateLimiter
from limits.util import WindowStats
from werkzeug.exceptions import TooManyRequests

SCHEME = "orientation-memory"
URI = f"{SCHEME}://"
SWEEP_SECONDS = 1.0
EXTENSION = "orientation.ratelimit"
_ROUTE_LIMITS = "_orientation_rate_limits"  # attribute of a limited view function
log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])
LimitValue = str | Callable[[], str]


class SweptMemoryStorage(MemoryStorage):
    """limits' MemoryStorage, expired counters swept inline once a second instead of by a timer.

    MemoryStorage expires counters from a threading.Timer of 10 ms that it starts again on the
    next hit once the last one has run: at a few hundred submissions per second that is a new
    thread on nearly every hit, whose start and wake-ups cost a gunicorn worker more than the
    counting itself. Expiry needs no thread: `get` already ignores an expired counter, so the
    sweep (to free memory) can run from a hit. `memory://` in the settings means this storage.
    """

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
    """The limits storage URI for ORIENTATION_RATELIMIT_STORAGE_URL."""
    return URI if configured == "memory://" else configured


@functools.lru_cache(maxsize=64)
def parsed(value: str) -> tuple[RateLimitItem, ...]:
    """'10 per minute;60 per hour' as limits' items; parsed once per distinct text."""
    return tuple(parse_many(value))


@dataclass(frozen=True)
class RouteLimit:
    value: LimitValue
    methods: frozenset[str] | None  # None: every method

    def applies_to(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def items(self) -> tuple[RateLimitItem, ...]:
        return parsed(self.value() if callable(self.value) else self.value)


@dataclass(frozen=True)
class Counted:
    """The limit of this request closest to running out, for the response's headers."""

    item: RateLimitItem
    stats: WindowStats


class RateLimited(TooManyRequests):
    """Over a limit: a 429 (the error page or the API's JSON says to wait)."""


class Limiter:
    """Declares limits on views (`limit`) and counts them on each request (`init_app`)."""

    def limit(
        self, value: LimitValue, *, methods: Iterable[str] | None = None
    ) -> Callable[[View], View]:
        """At most `value` requests per client address to the decorated view."""
        route = RouteLimit(value, frozenset(m.upper() for m in methods) if methods else None)

        def decorate(view: View) -> View:
            setattr(view, _ROUTE_LIMITS, (*getattr(view, _ROUTE_LIMITS, ()), route))
            return view

        return decorate

    def init_app(self, app: Flask, configured_storage: str) -> None:
        """Count in `configured_storage` (ORIENTATION_RATELIMIT_STORAGE_URL); call after CSRF."""
        storage = storage_from_string(storage_uri(configured_storage), wrap_exceptions=True)
        app.extensions[EXTENSION] = FixedWindowRateLimiter(storage)
        app.before_request(_count)
        app.after_request(_headers)


def _count() -> None:
    app = current_app
    endpoint = request.endpoint or ""
    routes: tuple[RouteLimit, ...] = getattr(app.view_functions.get(endpoint), _ROUTE_LIMITS, ())
    if not routes or not app.config.get("RATELIMIT_ENABLED", True):
        return
    counter: RateLimiter = app.extensions[EXTENSION]
    address = request.remote_addr or "unknown"
    closest: Counted | None = None
    for route in routes:
        if not route.applies_to(request.method):
            continue
        for item in route.items():
            try:
                allowed = counter.hit(item, endpoint, address)
                stats = counter.get_window_stats(item, endpoint, address)
            except StorageError as exc:
                # Redis down: let the request through rather than turn patients away; the
                # CSRF check and the honeypot still hold, and the log says limits are off.
                log.warning("rate limits not counted, their storage failed: %s", exc)
                return
            if not allowed:
                g.rate_limit = Counted(item, stats)
                raise RateLimited()
            if closest is None or stats.remaining < closest.stats.remaining:
                closest = Counted(item, stats)
    g.rate_limit = closest


def _headers(response: Response) -> Response:
    counted: Counted | None = g.get("rate_limit")
    if counted is None:
        return response
    reset = counted.stats.reset_time
    headers = [
        ("X-RateLimit-Limit", str(counted.item.amount)),
        ("X-RateLimit-Remaining", str(counted.stats.remaining)),
        ("X-RateLimit-Reset", str(math.ceil(reset))),
    ]
    if response.status_code == 429:
        headers.append(("Retry-After", str(max(math.ceil(reset - time.time()), 1))))
    response.headers.extend(headers)
    return response
