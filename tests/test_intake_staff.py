"""The phone line (coordinator) and the referral form (professionals) use the same questionnaire."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import AuditEntry, Message, Request, RequestEvent, Role, Source, Status, Territory, User
from orientation import create_app
from orientation.config import Settings
from tests.conftest import PASSWORD, AuthActions
from tests.test_intake import answers, count


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


# --- a session that expires during a call loses nothing typed -----------------------------


def _token(page: str) -> str:
    tag = re.search(r'<input[^>]*name="csrf_token"[^>]*>', page)
    found = re.search(r'value="([^"]+)"', tag.group(0)) if tag else None
    assert found is not None
    return found.group(1)


def _carried(page: str) -> dict[str, str]:
    """The hidden fields a login page holds, as the browser sends them back."""
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'name="(carried-[^"]+)" value="([^"]*)"', page)
    }


@pytest.fixture
def guarded(settings: Settings) -> Iterator[FlaskClient]:
    """A client of the app as it runs: with its CSRF check."""
    app = create_app(settings.with_overrides(extra={"WTF_CSRF_ENABLED": True}))
    client = app.test_client()
    client.environ_base["HTTP_SEC_FETCH_SITE"] = "same-origin"  # as a browser says of our pages
    yield client
    app.extensions["orientation.engine"].dispose()


def _log_in(client: FlaskClient, user: User, url: str = "/connexion", **carried: str) -> Any:
    token = _token(client.get("/connexion").get_data(as_text=True))
    return client.post(url, data={
        "email": user.email, "password": PASSWORD, "csrf_token": token, **carried,
    })  # fmt: skip


def test_a_call_typed_past_the_end_of_the_session_comes_back_after_logging_in_again(
    guarded: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    territory = make_territory("CPTS Lys", ["59017"])
    coordinator = make_user(territory, Role.COORDINATOR)
    _log_in(guarded, coordinator)
    stale = _token(guarded.get("/espace/saisie").get_data(as_text=True))
    # The working day is over (or the laptop slept): the session cookie is gone.
    guarded.delete_cookie("orientation_session")
    typed = answers(nonce="call-1", comment="<script>alert(1)</script>", csrf_token=stale)
    refused = guarded.post("/espace/saisie", data=typed)
    page = refused.get_data(as_text=True)
    assert refused.status_code == 401
    assert "Votre session a expiré" in page and "Connexion à l'espace coordination" in page
    assert 'name="carried-persons-0-last_name" value="Martin"' in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page
    assert "carried-csrf_token" not in page  # the old token stays behind
    assert count(session, Request) == 0

    back = guarded.post(
        "/connexion?next=/espace/saisie",
        data={"email": coordinator.email, "password": PASSWORD, "csrf_token": _token(page),
              **_carried(page)},
    )  # fmt: skip
    form = back.get_data(as_text=True)
    assert back.status_code == 200
    assert "une demande au téléphone</h1>" in form and "Vous êtes reconnecté" in form
    assert 'value="Martin"' in form and 'value="06 12 34 56 78"' in form
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in form
    assert 'name="nonce" value="call-1"' in form
    assert count(session, Request) == 0  # checked by the coordinator before it is sent

    sent = answers(nonce="call-1", comment="<script>alert(1)</script>", csrf_token=_token(form))
    first = guarded.post("/espace/saisie", data=sent)
    assert first.status_code == 200 and "Demande enregistrée" in first.get_data(as_text=True)
    guarded.post("/espace/saisie", data=sent)  # a second click: the same request
    request = session.scalars(select(Request)).one()
    assert request.source is Source.PHONE and request.comment == "<script>alert(1)</script>"


def test_a_wrong_password_keeps_the_answers_and_another_role_does_not_get_them(
    guarded: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    territory = make_territory("CPTS Lys", ["59017"])
    coordinator = make_user(territory, Role.COORDINATOR)
    page = guarded.post("/espace/saisie", data=answers(nonce="call-2")).get_data(as_text=True)
    carried = _carried(page)
    assert carried["carried-persons-0-first_name"] == "Jeanne"
    wrong = guarded.post("/connexion?next=/espace/saisie", data={
        "email": coordinator.email, "password": "not-it", "csrf_token": _token(page), **carried,
    })  # fmt: skip
    assert wrong.status_code == 401
    assert _carried(wrong.get_data(as_text=True)) == carried
    assert "Adresse e-mail ou mot de passe incorrect" in wrong.get_data(as_text=True)
    # A pharmacist logs in at that computer: the phone line is not theirs, they start at home.
    pharmacist = make_user(territory, Role.REFERRER)
    home = _log_in(guarded, pharmacist, "/connexion?next=/espace/saisie", **carried)
    assert home.status_code == 302 and home.headers["Location"] == "/orienter"
    assert count(session, Request) == 0


def test_a_form_with_a_token_of_before_a_new_login_comes_back_filled_in(
    guarded: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    pharmacist = make_user(make_territory("CPTS Lys", ["59017"]), Role.REFERRER)
    _log_in(guarded, pharmacist)
    stale = _token(guarded.get("/orienter").get_data(as_text=True))
    _log_in(guarded, pharmacist)  # in another tab: a fresh session, a fresh token
    response = guarded.post("/orienter", data=answers(nonce="r-9", csrf_token=stale))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Le formulaire a expiré" in page and 'value="Martin"' in page
    assert 'name="nonce" value="r-9"' in page
    guarded.post("/orienter", data=answers(nonce="r-9", csrf_token=_token(page)))
    assert session.scalars(select(Request)).one().referrer_id == pharmacist.id


def test_a_logged_out_post_keeps_its_answers_and_a_logged_out_visit_goes_to_login(
    client: FlaskClient,
) -> None:
    # Without the CSRF check (as in the other tests), the login check is what refuses.
    refused = client.post(
        "/orienter", data=answers(nonce="r-1"), headers={"Origin": "http://localhost"}
    )
    assert refused.status_code == 401
    assert 'name="carried-persons-0-last_name" value="Martin"' in refused.get_data(as_text=True)
    assert 'action="/connexion?next=/orienter"' in refused.get_data(as_text=True)
    visit = client.get("/espace/saisie")
    assert visit.status_code == 302
    assert visit.headers["Location"] == "/connexion?next=%2Fespace%2Fsaisie"


def test_a_login_page_left_open_overnight_comes_back_with_what_it_carried(
    guarded: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    coordinator = make_user(make_territory("CPTS Lys", ["59017"]), Role.COORDINATOR)
    page = guarded.post("/espace/saisie", data=answers(nonce="call-3")).get_data(as_text=True)
    guarded.delete_cookie("orientation_session")  # the night passes: the login form expired
    login = {"email": coordinator.email, "password": PASSWORD, **_carried(page)}
    stale = guarded.post("/connexion?next=/espace/saisie", data={**login, "csrf_token": "old"})
    again = stale.get_data(as_text=True)
    assert stale.status_code == 400
    assert "Le formulaire a expiré" in again and f'value="{coordinator.email}"' in again
    assert _carried(again) == _carried(page)
    form = guarded.post(
        "/connexion?next=/espace/saisie", data={**login, "csrf_token": _token(again)}
    )
    assert 'value="Martin"' in form.get_data(as_text=True)
    assert count(session, Request) == 0


def test_answers_posted_from_another_site_are_not_carried_into_the_login_page(
    guarded: FlaskClient, client: FlaskClient
) -> None:
    # Another site's page posting a made-up patient to the phone form, in the hope that a
    # coordinator logs in onto it and sends it: the login page comes, holding nothing.
    for sender, headers in (
        (guarded, {"Sec-Fetch-Site": "cross-site"}),
        (client, {"Origin": "https://evil.example"}),
        (client, {}),  # a browser that says nothing of the page
    ):
        refused = sender.post("/espace/saisie", data=answers(nonce="x-1"), headers=headers)
        assert refused.status_code == 401
        assert "Connexion à l'espace coordination" in refused.get_data(as_text=True)
        assert _carried(refused.get_data(as_text=True)) == {}


def test_too_many_logins_from_one_address_show_the_login_page_again(settings: Settings) -> None:
    app = create_app(
        settings.with_overrides(extra={"RATELIMIT_ENABLED": True, "WTF_CSRF_ENABLED": False})
    )
    client = app.test_client()
    tries = [
        client.post("/connexion", data={"email": "a@example.org", "password": "x"})
        for _ in range(11)
    ]
    app.extensions["orientation.engine"].dispose()
    assert [t.status_code for t in tries] == [401] * 10 + [429]  # 10 per minute
    page = tries[-1].get_data(as_text=True)
    assert "Trop de demandes depuis cette connexion" in page
    assert 'value="a@example.org"' in page and "Se connecter" in page


# --- out of territory at the phone line or the counter: never a dead end ------------------


def _forward_button(page: str) -> str:
    found = re.search(r'<form method="post" action="(/orienter/\d+/transmettre/[^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_a_call_from_a_commune_of_another_hosted_cpts_is_forwarded_there_once(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    lys = make_territory("CPTS Lys", ["59017"])
    lille = make_territory("CPTS Grand Lille", ["59350"])
    coordinator = make_user(lys, Role.COORDINATOR)
    auth.login(coordinator)
    page = client.post(
        "/espace/saisie", data=answers(nonce="call-7", postal_code="59000", commune="Lille")
    ).get_data(as_text=True)
    assert "Hors du territoire de CPTS Lys" in page
    assert "CPTS Grand Lille couvre Lille" in page and lille.contact_phone in page
    assert "Elle reçoit aussi par SMS son lien privé" in page
    button = _forward_button(page)
    assert button.endswith(f"/transmettre/{lille.slug}")

    forwarded = client.post(button)
    assert forwarded.status_code == 200
    assert "Demande transmise à CPTS Grand Lille" in forwarded.get_data(as_text=True)
    assert client.post(button).status_code == 200  # a second click: the same copy
    original, copy = session.scalars(select(Request).order_by(Request.id)).all()
    assert (original.territory_id, original.status) == (lys.id, Status.CLOSED)
    assert original.closed_reason == "transmise à CPTS Grand Lille"
    assert (copy.territory_id, copy.status, copy.source) == (
        lille.id,
        Status.ELIGIBLE,
        Source.PHONE,
    )
    assert copy.reference in forwarded.get_data(as_text=True)
    closing = session.scalars(
        select(RequestEvent).where(RequestEvent.request_id == original.id,
                                   RequestEvent.to_status == Status.CLOSED.value)
    ).one()  # fmt: skip
    assert closing.actor_user_id == coordinator.id
    entry = session.scalars(
        select(AuditEntry).where(AuditEntry.action == "request.forwarded")
    ).one()
    assert (entry.user_id, entry.object_id) == (coordinator.id, str(original.id))
    # The copy's acknowledgement goes out in the other CPTS's name.
    acknowledgements = session.scalars(select(Message).where(Message.request_id == copy.id)).all()
    assert [m.body.startswith("CPTS Grand Lille") for m in acknowledgements] == [True]


def test_without_a_hosted_cpts_the_counter_is_told_to_send_the_patient_to_the_cpam(
    client: FlaskClient, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    auth.login(make_user(make_territory("CPTS Lys", ["59017"]), Role.REFERRER))
    page = client.post(
        "/orienter", data=answers(nonce="r-5", postal_code="59000", commune="Lille")
    ).get_data(as_text=True)
    assert "Hors du territoire de CPTS Lys" in page and "ameli.fr" in page and "3646" in page
    assert "/transmettre/" not in page
    assert "Ouvrir la demande" not in page  # the case page is the coordination's


def test_a_landline_only_person_is_given_the_reference_since_no_message_can_reach_them(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    auth.login(make_user(make_territory("CPTS Lys", ["59017"]), Role.COORDINATOR))
    page = client.post(
        "/espace/saisie",
        data=answers(nonce="call-8", phone="03 20 12 34 56", preferred_channel="phone"),
    ).get_data(as_text=True)
    assert "Ni portable ni e-mail : aucun message ne lui est envoyé" in page
    assert session.scalar(select(func.count()).select_from(Message)) == 0
    request = session.scalars(select(Request)).one()
    assert f'href="/espace/demandes/{request.id}"' in page  # "Ouvrir la demande"


def test_only_the_referrer_forwards_and_only_to_a_cpts_that_covers_the_commune(
    client: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], auth: AuthActions,
) -> None:  # fmt: skip
    lys = make_territory("CPTS Lys", ["59017"])
    lille = make_territory("CPTS Grand Lille", ["59350"])
    roubaix = make_territory("CPTS Roubaix", ["59512"])
    first = make_user(lys, Role.REFERRER)
    auth.login(first)
    page = client.post(
        "/orienter", data=answers(nonce="r-6", postal_code="59000", commune="Lille")
    ).get_data(as_text=True)
    button = _forward_button(page)
    request_id = session.scalars(select(Request)).one().id
    assert client.post(f"/orienter/{request_id}/transmettre/{roubaix.slug}").status_code == 404
    auth.logout()
    auth.login(make_user(lys, Role.REFERRER))  # another pharmacist of the same CPTS
    assert client.post(button).status_code == 404
    auth.logout()
    auth.login(make_user(lille, Role.COORDINATOR))  # the other CPTS cannot reach it either
    assert client.post(button).status_code == 404
    eligible = client.post(
        "/espace/saisie", data=answers(nonce="call-9", postal_code="59000", commune="Lille")
    )
    assert eligible.status_code == 200  # in Grand Lille's territory: nothing to forward
    eligible_id = session.scalars(select(Request).where(Request.territory_id == lille.id)).one().id
    assert client.post(f"/orienter/{eligible_id}/transmettre/{lys.slug}").status_code == 404
    assert session.scalar(select(func.count()).select_from(Request)) == 2
