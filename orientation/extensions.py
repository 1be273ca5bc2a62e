"""Flask extensions, created unbound here and bound in the application factory."""

from __future__ import annotations

from flask import Request
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf import CSRFProtect

from orientation.ratelimit import Limiter

csrf = CSRFProtect()
limiter = Limiter()  # per client address; counted after the CSRF check (create_app)
login_manager = LoginManager()


def _locale(request: Request | None = None) -> str:
    # French first: the patients and staff of a CPTS are French speakers.
    return "fr"


babel = Babel()
