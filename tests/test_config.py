"""Settings come from ORIENTATION_* variables and fail fast with one sentence naming the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from orientation.config import ConfigError, load_settings


def test_defaults_give_a_sqlite_file_in_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings({"ORIENTATION_INSTANCE_PATH": str(tmp_path)})
    assert settings.env == "development"
    assert settings.database_url == f"sqlite:///{tmp_path / 'orientation.sqlite3'}"
    assert settings.geocoder == "offline"
    assert settings.sms_provider == settings.email_provider == "outbox"
    assert settings.base_url == "http://127.0.0.1:5000"


def test_development_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    first = load_settings({"ORIENTATION_INSTANCE_PATH": str(tmp_path)}).secret_key
    second = load_settings({"ORIENTATION_INSTANCE_PATH": str(tmp_path)}).secret_key
    assert first == second and len(first) >= 40
    mode = stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode)
    assert mode == 0o600


def test_production_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ORIENTATION_SECRET_KEY must be set in production"):
        load_settings({"ORIENTATION_ENV": "production", "ORIENTATION_INSTANCE_PATH": str(tmp_path)})
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_a_short_secret(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="too short"):
        load_settings({"ORIENTATION_ENV": "production", "ORIENTATION_SECRET_KEY": "abc"})


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("ORIENTATION_DATABASE_URL", "not a url", "ORIENTATION_DATABASE_URL is not a database URL"),
        ("ORIENTATION_DATABASE_URL", "mysql://x@y/z", "must point at SQLite or PostgreSQL"),
        ("ORIENTATION_ENV", "staging", "ORIENTATION_ENV must be one of development, production"),
        ("ORIENTATION_BASE_URL", "example.org", "ORIENTATION_BASE_URL must start with http"),
        ("ORIENTATION_SMS_PROVIDER", "twilio", "needs ORIENTATION_TWILIO_ACCOUNT_SID"),
        ("ORIENTATION_EMAIL_PROVIDER", "smtp", "needs ORIENTATION_SMTP_URL"),
        ("ORIENTATION_GEOCODER", "google", "ORIENTATION_GEOCODER must be one of offline, ban"),
    ],
)
def test_bad_settings_are_named_in_one_sentence(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        load_settings({"ORIENTATION_INSTANCE_PATH": str(tmp_path), variable: value})
    assert variable.split("_PROVIDER")[0] in str(raised.value) or variable in str(raised.value)
    assert "\n" not in str(raised.value)


def test_plain_postgresql_urls_use_psycopg_3(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ORIENTATION_INSTANCE_PATH": str(tmp_path),
            "ORIENTATION_DATABASE_URL": "postgresql://u@h/db",
        }
    )
    assert settings.database_url == "postgresql+psycopg://u@h/db"
