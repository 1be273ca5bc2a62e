"""Typed configuration, read once from ORIENTATION_* environment variables, failing fast."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENVIRONMENTS = ("development", "production")
GEOCODERS = ("offline", "ban")
SMS_PROVIDERS = ("outbox", "twilio")
EMAIL_PROVIDERS = ("outbox", "smtp")


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable to fix, in one sentence."""


@dataclass(frozen=True)
class Settings:
    """Everything the service needs from its environment."""

    env: str
    instance_path: Path
    database_url: str
    secret_key: str
    base_url: str
    geocoder: str = "offline"
    ban_address_file: Path | None = None
    sms_provider: str = "outbox"
    email_provider: str = "outbox"
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_api_base: str = ""
    smtp_url: str = ""
    mail_from: str = "orientation@localhost"
    ratelimit_storage_url: str = "memory://"
    # The dispatcher (`orientation dispatch`): see notifications/dispatcher.py.
    dispatch_max_attempts: int = 6
    dispatch_retry_seconds: int = 60
    dispatch_lease_seconds: int = 300
    dispatch_concurrency: int = 8
    provider_timeout_seconds: int = 10
    sms_rate_limit: int = 0  # messages per second per dispatcher process, 0 = no limit
    email_rate_limit: int = 0
    testing: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def with_overrides(self, **changes: Any) -> Settings:
        """A copy with some fields changed (used by tests and the CLI)."""
        return replace(self, **changes)


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = environ.get(name, default).strip().lower() or default
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, not {value!r}.")
    return value


def _whole_number(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{name} must be a whole number of at least {minimum}, not {raw!r}.")
    return int(raw)


def _development_secret(instance_path: Path) -> str:
    """Generate the development secret once and keep it in the instance folder (mode 600)."""
    secret_file = instance_path / "secret_key"
    if secret_file.exists():
        return secret_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the environment; raise ConfigError with one clear sentence."""
    environ = os.environ if environ is None else environ
    env = _choice(environ, "ORIENTATION_ENV", ENVIRONMENTS, "development")
    instance_path = Path(environ.get("ORIENTATION_INSTANCE_PATH", "instance")).resolve()

    database_url = environ.get("ORIENTATION_DATABASE_URL", "").strip()
    if not database_url:
        database_url = f"sqlite:///{instance_path / 'orientation.sqlite3'}"
    try:
        url = make_url(database_url)
    except ArgumentError as exc:
        raise ConfigError(
            f"ORIENTATION_DATABASE_URL is not a database URL ({exc}); "
            "use e.g. postgresql+psycopg://user@host/dbname or sqlite:///path/file.sqlite3."
        ) from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(
            "ORIENTATION_DATABASE_URL must point at SQLite or PostgreSQL, "
            f"not {url.get_backend_name()}."
        )
    if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        database_url = url.set(drivername="postgresql+psycopg").render_as_string(
            hide_password=False
        )

    secret_key = environ.get("ORIENTATION_SECRET_KEY", "").strip()
    if not secret_key:
        if env == "production":
            raise ConfigError(
                "ORIENTATION_SECRET_KEY must be set in production "
                "(a long random string, e.g. from `python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))'`)."
            )
        secret_key = _development_secret(instance_path)
    elif env == "production" and len(secret_key) < 32:
        raise ConfigError("ORIENTATION_SECRET_KEY is too short: use at least 32 random characters.")

    base_url = environ.get("ORIENTATION_BASE_URL", "http://127.0.0.1:5000").strip().rstrip("/")
    if not base_url.startswith(("http://", "https://")):
        raise ConfigError("ORIENTATION_BASE_URL must start with http:// or https://.")

    ban_file = environ.get("ORIENTATION_BAN_ADDRESS_FILE", "").strip()
    sms_provider = _choice(environ, "ORIENTATION_SMS_PROVIDER", SMS_PROVIDERS, "outbox")
    email_provider = _choice(environ, "ORIENTATION_EMAIL_PROVIDER", EMAIL_PROVIDERS, "outbox")
    settings = Settings(
        env=env,
        instance_path=instance_path,
        database_url=database_url,
        secret_key=secret_key,
        base_url=base_url,
        geocoder=_choice(environ, "ORIENTATION_GEOCODER", GEOCODERS, "offline"),
        ban_address_file=Path(ban_file).resolve() if ban_file else None,
        sms_provider=sms_provider,
        email_provider=email_provider,
        twilio_account_sid=environ.get("ORIENTATION_TWILIO_ACCOUNT_SID", ""),
        twilio_auth_token=environ.get("ORIENTATION_TWILIO_AUTH_TOKEN", ""),
        twilio_from=environ.get("ORIENTATION_TWILIO_FROM", ""),
        twilio_api_base=environ.get("ORIENTATION_TWILIO_API_BASE", ""),
        smtp_url=environ.get("ORIENTATION_SMTP_URL", ""),
        mail_from=environ.get("ORIENTATION_MAIL_FROM", "orientation@localhost"),
        ratelimit_storage_url=environ.get("ORIENTATION_RATELIMIT_STORAGE_URL", "memory://"),
        dispatch_max_attempts=_whole_number(environ, "ORIENTATION_DISPATCH_MAX_ATTEMPTS", 6, 1),
        dispatch_retry_seconds=_whole_number(environ, "ORIENTATION_DISPATCH_RETRY_SECONDS", 60, 1),
        dispatch_lease_seconds=_whole_number(environ, "ORIENTATION_DISPATCH_LEASE_SECONDS", 300, 1),
        dispatch_concurrency=_whole_number(environ, "ORIENTATION_DISPATCH_CONCURRENCY", 8, 1),
        provider_timeout_seconds=_whole_number(
            environ, "ORIENTATION_PROVIDER_TIMEOUT_SECONDS", 10, 1
        ),
        sms_rate_limit=_whole_number(environ, "ORIENTATION_SMS_RATE_LIMIT", 0),
        email_rate_limit=_whole_number(environ, "ORIENTATION_EMAIL_RATE_LIMIT", 0),
    )
    if settings.dispatch_lease_seconds <= 2 * settings.provider_timeout_seconds:
        # A lease shorter than a send could let a second dispatcher recover a message that the
        # first is still sending.
        raise ConfigError(
            "ORIENTATION_DISPATCH_LEASE_SECONDS must be more than twice "
            "ORIENTATION_PROVIDER_TIMEOUT_SECONDS."
        )
    if sms_provider == "twilio" and not (
        settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from
    ):
        raise ConfigError(
            "ORIENTATION_SMS_PROVIDER=twilio needs ORIENTATION_TWILIO_ACCOUNT_SID, "
            "ORIENTATION_TWILIO_AUTH_TOKEN and ORIENTATION_TWILIO_FROM."
        )
    if email_provider == "smtp" and not settings.smtp_url:
        raise ConfigError(
            "ORIENTATION_EMAIL_PROVIDER=smtp needs ORIENTATION_SMTP_URL "
            "(smtp://user:password@host:587 or smtps://...)."
        )
    if settings.ban_address_file and not settings.ban_address_file.is_file():
        raise ConfigError(
            f"ORIENTATION_BAN_ADDRESS_FILE points at {settings.ban_address_file}, "
            "which is not a readable file."
        )
    return settings
