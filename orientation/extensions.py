"""Flask extensions, created unbound here and bound in the application factory."""

from __future__ import annotations

from flask import Request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect

csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address, default_limits=[])
login_manager = LoginManager()


def _locale(request: Request | None = None) -> str:
    # French first: the patients and staff of a CPTS are French speakers.
    return "fr"


babel = Babel()
