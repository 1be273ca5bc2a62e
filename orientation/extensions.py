"""Flask extensions, created unbound here and bound in the application factory."""

from __future__ import annotations

from flask import Request
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf import CSRFProtect

csrf = CSRFProtect()
# Limits checked once per request, by `limiter.check` in a before_request hook (create_app):
# with auto_check, Flask-Limiter makes an app-wide pass before every request (for default and
# application limits, of which there are none) and then a second full pass in each limited
# view's wrapper; one pass with the view's own limits counts the same hits for half the work.
# (`check` leaves out application-wide limits, RATELIMIT_APPLICATION: none are set.)
limiter = Limiter(key_func=get_remote_address, default_limits=[], auto_check=False)
login_manager = LoginManager()


def _locale(request: Request | None = None) -> str:
    # French first: the patients and staff of a CPTS are French speakers.
    return "fr"


babel = Babel()
