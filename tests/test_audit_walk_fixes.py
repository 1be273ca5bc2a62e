"""Security review fixes: no-store on every response with personal data, the follow-up answer
and page audited, and the rights desk auditing probes of other CPTS's requests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Request, Status, Territory, User, utcnow
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.workflow import change_status
from tests.conftest import AuthActions

MakeRequest = Callable[..., Request]


def _entries(session: Session, action: str) -> list[AuditEntry]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
    )


# 1. Cache-Control: no-store


def test_the_api_read_of_a_request_says_no_store(
    client: FlaskClient, make_territory: Callable[..., Territory]
) -> None:
    lys = make_territory("CPTS Lys")
    body = {
        "persons": [{"first_name": "Paul", "last_name": "Dubois", "birth_date": "1950-01-31"}],
        "phone": "+32 470 12 34 56",
        "preferred_channel": "sms",
        "postal_code": "59280",
        "commune": "Armentieres",
        "reason": "moved",
        "consent": True,
    }
    created = client.post(f"/api/v1/territories/{lys.slug}/requests", json=body)
    assert created.status_code == 201
    assert created.headers["Cache-Control"] == "no-store"  # it holds the private link
    token = created.get_json()["private_link"].rsplit("/", 1)[1]
    read = client.get(f"/api/v1/requests/{token}")
    assert read.get_json()["persons"][0]["last_name"] == "Dubois"
    assert read.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("url", ["/api/v1/communes?postal_code=59280", "/nulle-part"])
def test_json_and_errors_outside_espace_say_no_store(client: FlaskClient, url: str) -> None:
    assert client.get(url).headers["Cache-Control"] == "no-store"


def test_the_api_description_and_static_files_may_still_be_cached(client: FlaskClient) -> None:
    assert "no-store" not in client.get("/api/openapi.json").headers.get("Cache-Control", "")
    with client.get("/static/" + _a_static_file()) as static:
        assert static.status_code == 200
        assert "no-store" not in static.headers.get("Cache-Control", "")


def _a_static_file() -> str:
    from orientation import PROJECT_ROOT

    folder = PROJECT_ROOT / "orientation" / "static"
    return next(p for p in sorted(folder.rglob("*.css"))).relative_to(folder).as_posix()


# 2. The follow-up page and its answer, audited


def _follow_up_link(app: Flask, request: Request) -> str:
    signer = LinkSigner(app.extensions["orientation.settings"].secret_key)
    return f"/suivi/rendez-vous/{signer.make(LinkPurpose.PATIENT_FOLLOW_UP, request.id)}"


def test_the_follow_up_page_and_answer_are_audited_as_the_patients(
    app: Flask,
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
) -> None:
    request = make_request(make_territory(), Status.ELIGIBLE)
    change_status(request, Status.PROPOSED, now=utcnow() - timedelta(days=31))
    request.follow_up_sent_at = utcnow()
    session.commit()
    link = _follow_up_link(app, request)

    page = client.get(link, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    [read] = _entries(session, "request.read_by_patient")
    assert (read.actor_label, read.object_id, read.ip) == ("patient", str(request.id),
                                                          "203.0.113.7")  # fmt: skip
    assert read.territory_id == request.territory_id and read.user_id is None

    done = client.post(link, data={"appointment": "oui", "declared": "oui"},
                       environ_base={"REMOTE_ADDR": "203.0.113.7"})  # fmt: skip
    assert done.status_code == 200
    [answered] = _entries(session, "request.follow_up_answered")
    assert (answered.actor_label, answered.object_id, answered.ip) == (
        "patient",
        str(request.id),
        "203.0.113.7",
    )
    assert answered.territory_id == request.territory_id
    assert answered.details == {"status": "oriented"}
    assert session.get(Request, request.id).status is Status.ORIENTED  # type: ignore[union-attr]


# 3. The rights desk: probes of another CPTS's requests audited, rectified fields named


@pytest.fixture
def desk(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> tuple[FlaskClient, User, Request]:
    """A coordinator logged in at their CPTS's desk, and a request of another CPTS."""
    ours, theirs = make_territory(), make_territory()
    user = make_user(ours)
    auth.login(user)
    return client, user, make_request(theirs)


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", "", {}),
        ("get", "/donnees.json", {}),
        ("post", "", {"kind": "limitation", "note": "par courrier"}),
        ("post", "/rectifier", {"phone": "06 11 22 33 44"}),
    ],
)
def test_another_cptss_request_id_at_the_rights_desk_is_a_404_audited(
    desk: tuple[FlaskClient, User, Request],
    session: Session,
    method: str,
    path: str,
    data: dict[str, str],
) -> None:
    client, user, foreign = desk
    url = f"/espace/droits/{foreign.id}{path}"
    response = client.get(url) if method == "get" else client.post(url, data=data)
    assert response.status_code == 404
    [probe] = _entries(session, "request.not_found")
    assert (probe.user_id, probe.territory_id) == (user.id, user.territory_id)
    assert probe.object_type == "request" and probe.object_id == str(foreign.id)
    assert session.get(Request, foreign.id).processing_limited_at is None  # type: ignore[union-attr]


def test_another_cptss_reference_looked_up_at_the_desk_is_audited(
    desk: tuple[FlaskClient, User, Request], session: Session
) -> None:
    client, user, foreign = desk
    typed = foreign.reference.lower().replace("-", " ")
    page = client.post("/espace/droits", data={"reference": typed})
    assert page.status_code == 200
    assert "Aucune demande de votre CPTS" in page.get_data(as_text=True)
    [probe] = _entries(session, "request.not_found")
    assert (probe.user_id, probe.territory_id) == (user.id, user.territory_id)
    assert probe.details["reference"] == foreign.reference


def test_the_rectification_audit_entry_names_the_fields_never_their_values(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    territory = make_territory()
    auth.login(make_user(territory))
    request = make_request(territory, persons=[("Rose", "Vermeulen", date(1990, 1, 21))])
    person_id = request.persons[0].id
    form = {
        "phone": "06 12 34 56 78",
        "email": "",
        "street": "3 rue Neuve",
        "best_time": "",
        "persons-0-first_name": "Rosa",
        "persons-0-last_name": "Vermeulen",
        "persons-0-birth_date": "21/01/1990",
    }
    assert client.post(f"/espace/droits/{request.id}/rectifier", data=form).status_code == 302
    [entry] = _entries(session, "rights.rectification")
    assert entry.details == {"fields": ["street", f"person:{person_id}:first_name"]}
    assert "Rosa" not in str(entry.details) and "Neuve" not in str(entry.details)
