"""Times as people in the CPTS read them: stored in UTC, said in Paris time.

Pages format times with Flask-Babel's datetimeformat (BABEL_DEFAULT_TIMEZONE is Europe/Paris);
the French sentences services write themselves (a refusal saying since when) use this."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")
_ZERO = timedelta(0)


def in_paris(moment: datetime) -> datetime:
    """The moment on Paris's clocks (a naive value is read as UTC, as the database stores it)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(PARIS)


def paris_midnight(day: date) -> datetime:
    """The instant (in UTC) at which `day` begins on Paris's clocks."""
    return datetime(day.year, day.month, day.day, tzinfo=PARIS).astimezone(UTC)


def _offset(second: int) -> timedelta:
    return datetime.fromtimestamp(second, PARIS).utcoffset() or _ZERO


@lru_cache(maxsize=64)
def paris_offsets(start: datetime, end: datetime) -> tuple[tuple[datetime, timedelta], ...]:
    """Paris's offsets from UTC over [start, end): each with the instant (UTC) from which it
    holds, the first from `start`. The rule is zoneinfo's (summer time included): probed once
    a day, each change then found to the second by halving."""
    first = int(start.timestamp())
    offsets = [(start.astimezone(UTC), _offset(first))]
    day, last = first, int(end.timestamp())
    while day < last:
        following = min(day + 86400, last)
        if _offset(following) != offsets[-1][1]:
            before, after = day, following  # the offset changes in (before, after]
            while after - before > 1:
                middle = (before + after) // 2
                if _offset(middle) == offsets[-1][1]:
                    before = middle
                else:
                    after = middle
            if after < last:
                offsets.append((datetime.fromtimestamp(after, UTC), _offset(after)))
        day = following
    return tuple(offsets)
