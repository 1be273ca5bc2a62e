"""Orientation: helps people without a médecin traitant find one, for a CPTS.

`create_app` is the application factory (also found by `flask --app orientation`).
"""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from orientation.config import ConfigError, Settings, load_settings

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = PROJECT_ROOT / "templates"

__all__ = ["ConfigError", "Settings", "create_app", "load_settings"]


def create_app(settings: Settings | None = None) -> Flask:
    """Build the application; raise ConfigError with one sentence when a setting is wrong."""
    from models.engine import DatabaseUnavailable, check_connection
    from orientation import auth, blueprints, cli, db, labels, security
    from orientation.extensions import babel, csrf, limiter
    from orientation.sessions import CookieSessionInterface

    settings = settings or load_settings()
    app = Flask(
        __name__,
        template_folder=str(TEMPLATES),
        instance_path=str(settings.instance_path),
        instance_relative_config=False,
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_NAME="orientation_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        REMEMBER_COOKIE_SECURE=settings.base_url.startswith("https://"),
        PERMANENT_SESSION_LIFETIME=8 * 3600,  # a working day
        MAX_CONTENT_LENGTH=20 * 1024 * 1024,  # CSV imports; forms are far smaller
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        BABEL_DEFAULT_LOCALE="fr",
        BABEL_DEFAULT_TIMEZONE="Europe/Paris",
    )
    app.config.update(settings.extra)
    if settings.is_production:
        # Production runs behind one TLS-terminating proxy (README): trust its forwarded headers
        # so that HTTPS is seen (HSTS, secure cookies) and rate limits count real clients.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
    app.extensions["orientation.settings"] = settings
    app.session_interface = CookieSessionInterface()

    engine = db.init_app(app, settings.database_url)
    try:
        check_connection(engine)
    except DatabaseUnavailable as exc:
        raise ConfigError(
            f"Cannot open the database named by ORIENTATION_DATABASE_URL ({exc}); "
            "fix the URL or start the database."
        ) from None

    csrf.init_app(app)
    # After the CSRF check (registered above): a forged POST is refused without counting
    # against its address.
    limiter.init_app(app, settings.ratelimit_storage_url)
    babel.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    labels.init_app(app)
    blueprints.register(app)
    cli.register(app)
    return app
