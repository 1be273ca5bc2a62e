"""Every form fed with oversized, malformed and hostile values: never a 500, never a stored script.

Property-based (hypothesis): each example posts one random form, then the pages that show what
was stored are read back and must not contain a live <script> or event-handler markup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from models import Request, Role, Status, Territory, User
from orientation.links import LinkPurpose, LinkSigner
from tests.conftest import AuthActions

HOSTILE = [
    "<script>alert('xss')</script>",
    '"><svg onload=alert(1)>',
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "' OR 1=1 --",
    "'; DROP TABLE users; --",
    "{{ config }}{% raw %}",
    "\x00",
    "nul\x00byte",
    "%00%0d%0aSet-Cookie: x=y",
    "\r\nLocation: https://evil.example",
    "../../../../etc/passwd",
    "-1",
    "0",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "",
    " ",
    "\u202eevil",
    "😀" * 60,
    "é" * 5000,
    "A" * 100_000,
    "a@b",
    "@@@@",
    "06 12 34 56 78" * 20,
    "2026-02-31",
    "K7QM-4T2X",
]
LIVE_MARKUP = ("<script", "<svg onload", "<img src=x onerror", "onerror=alert(1)>")

# Control characters (NUL, CR, LF, ESC...) inside otherwise ordinary text.
controls = st.tuples(
    st.text(max_size=10), st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=3)
).map("".join)
value = st.one_of(
    st.sampled_from(HOSTILE),
    st.sampled_from(HOSTILE),  # twice: hostile values in about half the fields
    controls,
    st.text(max_size=120),
    st.text(min_size=300, max_size=2000),
    st.integers().map(str),
)

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def form_of(*names: str) -> st.SearchStrategy[dict[str, str]]:
    """Each field present or not (a missing field is hostile too), with a random value."""
    return st.fixed_dictionaries({}, optional={name: value for name in names})


def assert_safe(response_status: int, pages: list[str]) -> None:
    assert response_status < 500
    for page in pages:
        lowered = page.lower()
        assert not any(marker in lowered for marker in LIVE_MARKUP), page[:2000]


@dataclass
class World:
    app: Flask
    territory: Territory
    admin: User
    coordinator: User
    instance_admin: User
    request: Request
    token: str
    clients: dict[int, FlaskClient] = field(default_factory=dict)


@pytest.fixture
def world(
    app: Flask,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
) -> World:
    territory = make_territory()
    request = make_request(territory, Status.IN_PROGRESS)
    token = LinkSigner(app.config["SECRET_KEY"]).make(LinkPurpose.PATIENT_REQUEST, request.id)
    return World(
        app,
        territory,
        make_user(territory, Role.CPTS_ADMIN),
        make_user(territory),
        make_user(None, Role.ADMIN),
        request,
        token,
    )


def _client_as(world: World, user: User | None) -> FlaskClient:
    """A client logged in once per test (argon2 is slow on purpose), reused by every example."""
    if user is None:
        return world.app.test_client()
    if user.id not in world.clients:
        client = world.app.test_client()
        assert AuthActions(client).login(user).status_code == 302
        world.clients[user.id] = client
    return world.clients[user.id]


@FUZZ
@given(data=form_of("email", "password"))
@example(data={"email": "a\x00b@example.org", "password": "x" * 12})  # was a 500 on PostgreSQL
@example(data={"email": HOSTILE[0], "password": "A" * 100_000})
def test_the_login_form_never_fails_on_hostile_input(world: World, data: dict[str, str]) -> None:
    client = _client_as(world, None)
    response = client.post("/connexion", data=data)
    assert_safe(response.status_code, [response.get_data(as_text=True)])


@FUZZ
@given(
    data=form_of("full_name", "email", "role", "territory_id", "profession", "password"),
    good_password=st.booleans(),
)
@example(data={"full_name": HOSTILE[0], "profession": HOSTILE[1]}, good_password=True)
@example(data={"full_name": "nul\x00byte", "email": "x@example.org"}, good_password=True)
def test_the_new_staff_form_never_fails_nor_stores_a_script(
    world: World, data: dict[str, str], good_password: bool
) -> None:
    client = _client_as(world, world.admin)
    if good_password:  # let some examples through validation, so hostile names get stored
        data = {**data, "password": "a-strong-pass-77", "role": "coordinator",
                "territory_id": str(world.territory.id)}  # fmt: skip
    response = client.post("/admin/equipe/nouveau", data=data)
    listing = client.get("/admin/").get_data(as_text=True)
    assert_safe(response.status_code, [response.get_data(as_text=True), listing])


@FUZZ
@given(
    data=form_of(
        "contact_phone",
        "contact_email",
        "postal_address",
        "dpo_contact",
        "max_distance_km",
        "availability_refresh_months",
        "follow_up_days",
        "retention_closed_months",
        "retention_out_of_territory_months",
        "retention_message_body_months",
    )
)
def test_the_settings_form_never_fails_nor_stores_a_script(
    world: World, data: dict[str, str]
) -> None:
    client = _client_as(world, world.admin)
    numbers = {"max_distance_km": "10", "availability_refresh_months": "6",
               "follow_up_days": "30", "retention_closed_months": "12",
               "retention_out_of_territory_months": "3",
               "retention_message_body_months": "3"}  # fmt: skip
    url = f"/admin/cpts/{world.territory.id}/parametres"
    response = client.post(url, data={**numbers, **data})
    pages = [response.get_data(as_text=True), client.get("/espace/registre").get_data(as_text=True)]
    assert_safe(response.status_code, pages)


@FUZZ
@given(data=form_of("name", "communes"))
@example(data={"name": HOSTILE[0], "communes": "59017"})
def test_the_new_cpts_form_never_fails_nor_stores_a_script(
    world: World, data: dict[str, str]
) -> None:
    client = _client_as(world, world.instance_admin)
    response = client.post("/admin/cpts/nouvelle", data=data)
    listing = client.get("/admin/").get_data(as_text=True)
    assert_safe(response.status_code, [response.get_data(as_text=True), listing])


@FUZZ
@given(data=form_of("password"))
def test_the_password_reset_form_never_fails(world: World, data: dict[str, str]) -> None:
    client = _client_as(world, world.admin)
    response = client.post(f"/admin/equipe/{world.coordinator.id}/mot-de-passe", data=data)
    assert_safe(response.status_code, [response.get_data(as_text=True)])


@FUZZ
@given(
    find=form_of("reference"),
    process=form_of("kind", "note"),
    correct=form_of("phone", "email", "street", "best_time"),
)
@example(
    find={"reference": "\x00"},
    process={"kind": "limitation", "note": HOSTILE[2]},
    correct={"phone": "0612345678", "street": HOSTILE[0], "best_time": "nul\x00byte"},
)
def test_the_rights_desk_forms_never_fail_nor_store_a_script(
    world: World, find: dict[str, str], process: dict[str, str], correct: dict[str, str]
) -> None:
    client = _client_as(world, world.coordinator)
    base = f"/espace/droits/{world.request.id}"
    statuses = [
        client.post("/espace/droits", data=find).status_code,
        client.post(base, data=process).status_code,  # no confirmation: never an erasure
        client.post(f"{base}/rectifier", data=correct).status_code,
    ]
    page = client.get(base)
    assert_safe(max(statuses + [page.status_code]), [page.get_data(as_text=True)])


@FUZZ
@given(args=form_of("since", "until", "action", "user_id", "object_type", "object_id"))
def test_the_audit_filters_never_fail(world: World, args: dict[str, str]) -> None:
    client = _client_as(world, world.admin)
    response = client.get("/admin/audit", query_string=args)
    assert_safe(response.status_code, [response.get_data(as_text=True)])


@FUZZ
@given(data=form_of("confirm"), token=st.one_of(st.sampled_from(HOSTILE), st.text(max_size=300)))
def test_the_patient_links_never_fail_on_hostile_tokens_or_forms(
    world: World, data: dict[str, str], token: str
) -> None:
    client = _client_as(world, None)
    for path in (f"/suivi/{token}/donnees.json", f"/suivi/{token}/effacer"):
        response = client.get(path) if token.strip("/") else client.get("/suivi/x/effacer")
        assert_safe(response.status_code, [response.get_data(as_text=True)])
    response = client.post(f"/suivi/{world.token}/effacer", data=data)
    assert_safe(response.status_code, [response.get_data(as_text=True)])
