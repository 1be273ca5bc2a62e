"""The cross-tenant walk: every route of the app, as each user of CPTS B, with CPTS A's ids.

Routes come from `app.url_map`, so routes added later are walked too. Path parameters are
filled with the ids of CPTS A's objects of every model (found through the mappers, not a fixed
list), its references and slug, and signed links made for A's objects for every purpose.
No response may show A's data (names, references, phones, e-mails) and none may be a 500.

A signed link is the credential of a patient or doctor: whoever holds it sees what it opens,
logged in or not. So for routes taking a token the rule is that a B session adds nothing: what
a B user sees of A is no more than what an anonymous visitor with the same link sees.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session
from werkzeug.routing import Rule

from models import (
    Base,
    Channel,
    Request,
    Role,
    Status,
    Territory,
    TerritoryOwned,
    User,
    utcnow,
)
from notifications.outbox import queue_message
from orientation.links import LinkPurpose, LinkSigner
from orientation.services import audit
from orientation.services.contact import display_phone
from orientation.services.workflow import change_status
from tests.conftest import AuthActions

MAX_VARIANTS = 40  # per route and method: enough for every id of A, bounded for many params


@dataclass
class TenantA:
    territory: Territory
    ids: list[int] = field(default_factory=list)
    strings: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)  # what must never leak to B


def _seed_a(
    app: Flask,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_doctor: Callable[..., Any],
    make_request: Callable[..., Request],
) -> TenantA:
    territory = make_territory(name="CPTS Alpha")
    staff = [
        make_user(territory, role, email=f"{role.value}@alpha-cpts.example")
        for role in (Role.CPTS_ADMIN, Role.COORDINATOR, Role.REFERRER)
    ]
    for user in staff:
        user.full_name = f"Agathe Aubépine-{user.role.value}"
    doctor = make_doctor(
        territory, last_name="Quincampoix", phone="+33320998877", email="dr.q@alpha.example"
    )
    requests = [
        make_request(
            territory,
            status,
            persons=[("Zéphyrine", "Tartempion", date(1944, 4, 4))],
            phone="+33698765432",
            email="zephyrine.tartempion@example.org",
            street="17 impasse des Glycines",
        )
        for status in (Status.ELIGIBLE, Status.PROPOSED, Status.OUT_OF_TERRITORY)
    ]
    change_status(requests[0], Status.IN_PROGRESS, now=utcnow(), note="Appel à Zéphyrine")
    queue_message(
        session,
        territory_id=territory.id,
        channel=Channel.SMS,
        recipient="+33698765432",
        body="Bonjour Zéphyrine Tartempion",
        purpose="acknowledgement",
        idempotency_key="alpha-ack",
        request_id=requests[0].id,
        doctor_id=doctor.id,
    )
    audit.record(session, "request.read", territory_id=territory.id, object_id=requests[0].id)
    session.commit()

    a = TenantA(territory)
    # Every id of every model that belongs to A, whatever models exist at merge time.
    for mapper in Base.registry.mappers:
        model = mapper.class_
        columns = {c.key for c in mapper.column_attrs}
        if issubclass(model, TerritoryOwned) or "territory_id" in columns:
            query = select(model).where(model.territory_id == territory.id)  # type: ignore[attr-defined]
        elif model is Territory:
            query = select(model).where(Territory.id == territory.id)
        else:
            continue
        for obj in session.scalars(query):
            for key in inspect(model).primary_key:
                value = getattr(obj, key.key)
                if isinstance(value, int) and value not in a.ids:
                    a.ids.append(value)
    signer = LinkSigner(app.config["SECRET_KEY"])
    subjects = [r.id for r in requests] + [doctor.id]
    a.tokens = [signer.make(p, s) for p in LinkPurpose for s in subjects]
    a.strings = [r.reference for r in requests] + [territory.slug]
    a.secrets = [
        "Zéphyrine",
        "Tartempion",
        "zephyrine.tartempion@example.org",
        "+33698765432",
        display_phone("+33698765432"),
        "17 impasse des Glycines",
        "Quincampoix",
        "+33320998877",
        "dr.q@alpha.example",
        "Aubépine",
        "alpha-cpts.example",
        *[r.reference for r in requests],
    ]
    return a


def _values_for(rule: Rule, a: TenantA) -> Iterator[dict[str, Any]]:
    choices: dict[str, list[Any]] = {}
    for name in sorted(rule.arguments):
        converter = type(rule._converters[name]).__name__.lower()  # noqa: SLF001
        if "int" in converter:
            choices[name] = a.ids
        elif "float" in converter:
            choices[name] = [float(i) for i in a.ids]
        elif "uuid" in converter:
            choices[name] = ["00000000-0000-4000-8000-000000000001"]
        elif "token" in name:
            choices[name] = a.tokens
        else:
            choices[name] = a.strings + a.tokens + [str(i) for i in a.ids]
    if len(choices) <= 1:
        combos: Iterator[tuple[Any, ...]] = itertools.product(*choices.values())
    else:  # several parameters: same-index pairs first, then a bounded product
        zipped = zip(*(itertools.cycle(v) for v in choices.values()), strict=False)
        combos = itertools.chain(
            itertools.islice(zipped, max(len(v) for v in choices.values())),
            itertools.product(*choices.values()),
        )
    for values in itertools.islice(combos, MAX_VARIANTS):
        yield dict(zip(choices, values, strict=True))


# Logging out mid-walk would turn every later call into a login redirect and weaken the walk.
NOT_WALKED = {"static", "auth.logout"}


def _walkable(app: Flask) -> list[Rule]:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint not in NOT_WALKED]


def _call(client: FlaskClient, method: str, url: str) -> tuple[int, str]:
    try:
        response = client.open(url, method=method, data={})
    except Exception as exc:  # noqa: BLE001 - a crash is a 500 for this test
        return 500, f"{type(exc).__name__}: {exc}"
    return response.status_code, response.get_data(as_text=True)


def _leaks(text: str, a: TenantA) -> set[str]:
    return {secret for secret in a.secrets if secret in text}


def _urls(app: Flask, a: TenantA) -> list[tuple[Rule, str, str]]:
    from werkzeug.routing import BuildError

    calls = []
    adapter = app.url_map.bind("localhost")
    for rule in _walkable(app):
        for method in ("GET", "POST"):
            if method not in (rule.methods or set()):
                continue
            for values in _values_for(rule, a):
                try:
                    url = adapter.build(rule.endpoint, values, method=method)
                except BuildError:
                    continue
                calls.append((rule, method, url))
    # Reads first: a POST may change A's data (e.g. erase through a link).
    return sorted(calls, key=lambda call: call[1] != "GET")


@pytest.fixture
def tenant_a(
    app: Flask,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_doctor: Callable[..., Any],
    make_request: Callable[..., Request],
) -> TenantA:
    return _seed_a(app, session, make_territory, make_user, make_doctor, make_request)


def test_no_route_shows_cpts_a_data_to_any_user_of_cpts_b(
    app: Flask,
    tenant_a: TenantA,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> None:
    b = make_territory(name="CPTS Beta")
    make_request(b, persons=[("Bruno", "Bêta", date(1990, 1, 1))])  # B has data of its own
    calls = _urls(app, tenant_a)
    assert len({rule.rule for rule, _m, _u in calls}) >= 10, "the walk found too few routes"

    anonymous = app.test_client()
    failures: list[str] = []
    walked = 0
    for role in (Role.CPTS_ADMIN, Role.COORDINATOR, Role.REFERRER):
        client = app.test_client()
        assert AuthActions(client).login(make_user(b, role)).status_code == 302
        for rule, method, url in calls:
            link_shows: set[str] = set()
            if any("token" in name for name in rule.arguments):
                # What the link alone opens, just before (same state of the data).
                link_shows = _leaks(_call(anonymous, method, url)[1], tenant_a)
            status, body = _call(client, method, url)
            walked += 1
            if status >= 500:
                failures.append(f"{role.value} {method} {url}: {status} {body[:200]}")
                continue
            leaked = _leaks(body, tenant_a) - link_shows
            if leaked:
                failures.append(f"{role.value} {method} {url}: shows {sorted(leaked)}")
        # Still logged in at the end: the walk ran as this user all along.
        start_page = "/orienter" if role is Role.REFERRER else "/espace/"
        assert client.get(start_page).status_code == 200
    assert not failures, "\n".join(failures[:30])
    assert walked >= 3 * len(calls)


def test_the_walk_would_notice_a_leak(app: Flask, tenant_a: TenantA, session: Session) -> None:
    """Control: A's own coordinator, on the same URLs, does see A's data somewhere."""
    coordinator = session.scalar(
        select(User).where(
            User.territory_id == tenant_a.territory.id, User.role == Role.COORDINATOR
        )
    )
    assert coordinator is not None
    client = app.test_client()
    assert AuthActions(client).login(coordinator).status_code == 302
    seen: set[str] = set()
    for rule, method, url in _urls(app, tenant_a):
        if method == "GET" and not any("token" in name for name in rule.arguments):
            seen |= _leaks(_call(client, method, url)[1], tenant_a)
    assert {"Zéphyrine", "Tartempion", "+33698765432"} <= seen


def test_anonymous_visitors_get_no_staff_page_and_no_500(app: Flask, tenant_a: TenantA) -> None:
    client = app.test_client()
    failures = []
    for _rule, method, url in _urls(app, tenant_a):
        status, body = _call(client, method, url)
        if status >= 500:
            failures.append(f"{method} {url}: {status}")
        elif re.match(r"^/(espace|admin)", url) and status not in (302, 401, 403, 404, 405):
            failures.append(f"{method} {url}: {status} without a login")
    assert not failures, "\n".join(failures[:30])
