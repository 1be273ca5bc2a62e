"""Times as people in the CPTS read them: stored in UTC, said in Paris time.

Pages format times with Flask-Babel's datetimeformat (BABEL_DEFAULT_TIMEZONE is Europe/Paris);
the French sentences services write themselves (a refusal saying since when) use this."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")


def in_paris(moment: datetime) -> datetime:
    """The moment on Paris's clocks (a naive value is read as UTC, as the database stores it)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(PARIS)
