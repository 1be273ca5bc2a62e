"""Hardening: CSRF on every form, rate limits (shared through Redis), cookies, HSTS, clean logs."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient

from models import Request, Role, Status, Territory, User
from orientation import Settings, create_app
from orientation.links import LinkPurpose, LinkSigner
from tests.conftest import PASSWORD, REDIS_URL, AuthActions, require_redis


@pytest.fixture
def make_app(settings: Settings) -> Iterator[Callable[..., Flask]]:
    """Build extra apps on the test database with other settings (CSRF or limits on...)."""
    built: list[Flask] = []

    def _make(**overrides: object) -> Flask:
        application = create_app(settings.with_overrides(**overrides))
        built.append(application)
        return application

    yield _make
    for application in built:
        application.extensions["orientation.engine"].dispose()


def _csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert match, f"no CSRF token in {path}"
    return match.group(1)


def _fill(rule_arguments: set[str], values: dict[str, object]) -> dict[str, object]:
    return {name: values.get(name, 1) for name in rule_arguments}


# Exempt by design: the JSON API carries no session cookie (nothing for a forged form to ride
# on), and Twilio's status webhook is authenticated by its request signature instead.
CSRF_EXEMPT_BLUEPRINTS = {"api", "webhooks"}


def test_the_csrf_exempt_routes_are_exactly_the_api_and_the_webhook(
    make_app: Callable[..., Flask],
) -> None:
    from orientation.extensions import csrf

    make_app(extra={"RATELIMIT_ENABLED": False})
    exempt = {blueprint.name for blueprint in csrf._exempt_blueprints} | {
        view.rsplit(".", 2)[-2] for view in csrf._exempt_views
    }
    assert exempt == CSRF_EXEMPT_BLUEPRINTS


def test_a_post_without_the_csrf_token_is_refused_on_every_state_changing_route(
    make_app: Callable[..., Flask],
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    app = make_app(extra={"RATELIMIT_ENABLED": False})  # CSRF on, as in production
    territory = make_territory()
    admin = make_user(territory, Role.CPTS_ADMIN)
    coordinator = make_user(territory)
    request = make_request(territory)
    token = LinkSigner(app.config["SECRET_KEY"]).make(LinkPurpose.PATIENT_REQUEST, request.id)
    values: dict[str, object] = {
        "user_id": coordinator.id,
        "territory_id": territory.id,
        "request_id": request.id,
        "token": token,
    }
    client = app.test_client()
    refused_login = client.post("/connexion", data={"email": admin.email, "password": PASSWORD})
    assert refused_login.status_code == 400
    logged_in = client.post(
        "/connexion",
        data={
            "email": admin.email,
            "password": PASSWORD,
            "csrf_token": _csrf_token(client, "/connexion"),
        },
    )
    assert logged_in.status_code == 302

    checked = []
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if "POST" not in (rule.methods or set()) or rule.endpoint == "static":
                continue
            if rule.endpoint.split(".")[0] in CSRF_EXEMPT_BLUEPRINTS:
                continue
            url = url_for(rule.endpoint, **_fill(set(rule.arguments), values))
            checked.append(url)
    assert len(checked) >= 10, checked
    for url in checked:
        response = client.post(url, data={"confirm": "y", "kind": "erasure", "password": "x" * 20})
        assert response.status_code == 400, url
    # The token was the only thing missing: the same form with it goes through.
    with_token = client.post(
        f"/admin/equipe/{coordinator.id}/desactiver",
        data={"csrf_token": _csrf_token(client, "/admin/")},
    )
    assert with_token.status_code == 302


def test_session_cookies_are_secure_httponly_and_samesite_when_the_site_is_https(
    make_app: Callable[..., Flask],
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    user = make_user(make_territory())
    https = make_app(base_url="https://orientation.example.org").test_client()
    response = AuthActions(https).login(user)
    cookie = response.headers["Set-Cookie"]
    assert "orientation_session=" in cookie
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_hsts_is_sent_on_https_and_never_on_plain_http(client: FlaskClient) -> None:
    secure = client.get("/", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    plain = client.get("/")
    assert "Strict-Transport-Security" not in plain.headers
    for header in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
        assert header in plain.headers
    assert "'unsafe-inline'" not in plain.headers["Content-Security-Policy"]


def test_the_signed_link_routes_are_rate_limited(
    make_app: Callable[..., Flask],
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
) -> None:
    app = make_app(extra={"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True})
    client = app.test_client()
    statuses = [client.get(f"/suivi/guess-{n}/donnees.json").status_code for n in range(31)]
    assert statuses[:30] == [404] * 30
    assert statuses[30] == 429


LOGIN = {"email": "nobody@example.org", "password": "wrong-password-1"}
OTHER_WORKER = """
import json, sys
from pathlib import Path
from orientation import Settings, create_app
url, storage, address, count, instance = sys.argv[1:6]
app = create_app(Settings(env="development", instance_path=Path(instance), database_url=url,
    secret_key="test-secret-" + "x" * 40, base_url="http://localhost", testing=True,
    ratelimit_storage_url=storage,
    extra={"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True}))
client = app.test_client()
statuses = [client.post("/connexion", data=LOGIN, environ_base={"REMOTE_ADDR": address}).status_code
            for _ in range(int(count))]
print(json.dumps(statuses))
"""


def _attempts_in_another_process(settings: Settings, storage: str, address: str) -> list[int]:
    """Five failed logins from a second worker process (its own app, its own memory)."""
    script = f"LOGIN = {LOGIN!r}\n" + OTHER_WORKER
    result = subprocess.run(
        [sys.executable, "-c", script, settings.database_url, storage, address, "5",
         str(settings.instance_path)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    statuses: list[int] = json.loads(result.stdout.strip().splitlines()[-1])
    return statuses


@pytest.mark.parametrize("storage", [REDIS_URL, "memory://"])
def test_login_limits_are_shared_between_workers_only_through_redis(
    make_app: Callable[..., Flask], settings: Settings, storage: str
) -> None:
    if storage == REDIS_URL:
        require_redis()
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    first = make_app(
        ratelimit_storage_url=storage,
        extra={"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True},
    ).test_client()
    mine = [
        first.post("/connexion", data=LOGIN, environ_base={"REMOTE_ADDR": address}).status_code
        for _ in range(6)
    ]
    assert mine == [401] * 6
    theirs = _attempts_in_another_process(settings, storage, address)
    if storage == REDIS_URL:
        # 10 per minute in all: the other worker allows 4 more, then refuses.
        assert theirs == [401, 401, 401, 401, 429]
    else:
        assert theirs == [401] * 5  # each worker counts alone: why production sets Redis


def test_memory_rate_limits_expire_and_count_without_starting_a_thread_per_hit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import limits.storage.memory
    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import FixedWindowRateLimiter

    from orientation import ratelimit

    storage = storage_from_string(ratelimit.storage_uri("memory://"))
    assert isinstance(storage, ratelimit.SweptMemoryStorage)
    timers: list[object] = []
    real_timer = limits.storage.memory.threading.Timer

    def counting_timer(*args: object, **kwargs: object) -> object:
        timers.append(args)
        return real_timer(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(limits.storage.memory.threading, "Timer", counting_timer)
    limiter = FixedWindowRateLimiter(storage)
    one_second = parse("3 per second")
    hits = [limiter.hit(one_second, "10.1.2.3") for _ in range(4)]
    assert hits == [True, True, True, False]
    assert [limiter.hit(one_second, f"10.9.9.{n}") for n in range(100)] == [True] * 100
    assert timers == []  # limits' own MemoryStorage starts a Timer thread again and again
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: 1e12)  # the next sweep is due
    real_time = limits.storage.memory.time.time
    monkeypatch.setattr(limits.storage.memory.time, "time", lambda: real_time() + 2)
    assert limiter.hit(one_second, "10.1.2.3")  # a new window for the address refused above
    assert len(storage.storage) == 1  # the 100 expired counters were swept, this one is new


def test_no_personal_data_or_secret_reaches_the_logs_during_submissions(
    app: Flask,
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    caplog: pytest.LogCaptureFixture,
) -> None:
    territory = make_territory()
    coordinator = make_user(territory)
    request = make_request(
        territory,
        Status.IN_PROGRESS,
        persons=[("Ghislaine", "Vandamme", date(1941, 2, 3))],
        email="ghislaine.vandamme@example.org",
        phone="+33687654321",
    )
    token = LinkSigner(app.config["SECRET_KEY"]).make(LinkPurpose.PATIENT_REQUEST, request.id)
    # What an operator turns on to investigate: INFO everywhere, SQL statements included.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    auth.login(coordinator, password="wrong-but-secret-99")
    auth.login(coordinator)
    client.post(
        f"/espace/droits/{request.id}/rectifier",
        data={"phone": "06 99 88 77 66", "email": "g.v@example.org", "street": "9 rue Haute"},
    )
    client.get(f"/suivi/{token}/donnees.json")
    client.post(f"/suivi/{token}/effacer", data={"confirm": "y"})
    assert len(caplog.records) > 20, "the SQL was not logged: the capture is not working"
    logged = caplog.text
    for secret in (
        PASSWORD,
        "wrong-but-secret-99",
        app.config["SECRET_KEY"],
        token,
        "Ghislaine",
        "Vandamme",
        "ghislaine.vandamme@example.org",
        "+33687654321",
        "+33699887766",
        "9 rue Haute",
        "1941-02-03",
    ):
        assert secret not in logged, secret


def test_a_nul_byte_anywhere_in_a_form_is_refused_before_reaching_the_database(
    client: FlaskClient, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> None:
    user = make_user(make_territory())
    # PostgreSQL refuses NUL in text: without the guard this was a 500 on the login form.
    assert (
        client.post("/connexion", data={"email": "a\x00b", "password": "x" * 12}).status_code == 400
    )
    assert client.get("/admin/audit?action=lo%00gin").status_code == 400
    assert AuthActions(client).login(user).status_code == 302  # ordinary input is unaffected
