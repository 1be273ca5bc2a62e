"""The phone line (coordinator) and the referral form (professionals) use the same questionnaire."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Request, RequestEvent, Role, Source, Territory, User
from tests.conftest import AuthActions
from tests.test_intake import answers


def test_a_coordinator_records_a_request_on_the_phone(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    territory = make_territory("CPTS Lys", ["59017"])
    user = make_user(territory, Role.COORDINATOR)
    auth.login(user)
    assert "une demande au téléphone</h1>" in client.get("/espace/saisie").get_data(as_text=True)
    response = client.post("/espace/saisie", data=answers(nonce="p1"))
    request = session.scalars(select(Request)).one()
    assert request.reference in response.get_data(as_text=True)
    assert request.source is Source.PHONE and request.referrer_id is None
    submitted = session.scalars(select(RequestEvent).where(RequestEvent.kind == "submitted")).one()
    assert submitted.actor_user_id == user.id


def test_a_referrer_registers_a_patient_who_agreed(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    territory = make_territory("CPTS Lys", ["59017"])
    pharmacist = make_user(territory, Role.REFERRER)
    auth.login(pharmacist)
    refused = client.post("/orienter", data=answers(consent=None))
    assert refused.status_code == 422
    assert "Votre accord est nécessaire" in refused.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(Request)) == 0
    client.post("/orienter", data=answers(nonce="r1"))
    request = session.scalars(select(Request)).one()
    assert request.source is Source.PROFESSIONAL and request.referrer_id == pharmacist.id
    assert request.territory_id == territory.id


def test_a_referrer_cannot_use_the_phone_line_and_visitors_must_log_in(
    client: FlaskClient, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    assert client.get("/orienter").status_code == 302
    auth.login(make_user(make_territory(), Role.REFERRER))
    assert client.get("/espace/saisie").status_code == 403
    assert client.get("/orienter").status_code == 200
