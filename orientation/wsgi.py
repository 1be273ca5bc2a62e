"""WSGI entry point for gunicorn: `gunicorn 'orientation.wsgi:app'`."""

from orientation import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:  # one clear sentence, not a traceback, in the server's log
    raise SystemExit(f"orientation: {exc}") from None
