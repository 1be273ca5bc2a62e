"""Staff forms keep what was typed when the session expired: through a new login, back filled
in (the phone line, the referral form, the message template editor, the request page's forms,
the doctor's card, the patients' rights desk)."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Doctor,
    Message,
    MessageTemplate,
    Request,
    Role,
    Source,
    Status,
    Territory,
    User,
)
from orientation import create_app
from orientation.config import Settings
from tests.conftest import PASSWORD
from tests.test_intake import answers, count

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


def _carried_pairs(page: str) -> dict[str, list[str]]:
    """The same, keeping every value of a name (ticked boxes share theirs)."""
    carried: dict[str, list[str]] = {}
    for name, value in re.findall(r'name="(carried-[^"]+)" value="([^"]*)"', page):
        carried.setdefault(name, []).append(html.unescape(value))
    return carried


def _expire_and_post(client: FlaskClient, url: str, data: dict[str, Any]) -> str:
    """POST `data` to `url` with the token of before the session expired: the login page."""
    stale = _token(client.get("/espace/").get_data(as_text=True))  # the logout button's
    client.delete_cookie("orientation_session")
    refused = client.post(url, data={**data, "csrf_token": stale})
    assert refused.status_code == 401
    page = refused.get_data(as_text=True)
    assert "Votre session a expiré" in page
    return page


def _log_in_again(client: FlaskClient, user: User, url: str, login_page: str) -> str:
    back = client.post(f"/connexion?next={url}", data={
        "email": user.email, "password": PASSWORD, "csrf_token": _token(login_page),
        **_carried_pairs(login_page),
    })  # fmt: skip
    assert back.status_code == 200
    page = back.get_data(as_text=True)
    assert "Vous êtes reconnecté" in page and f'action="{url}"' in page
    return page


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

    login = {"email": coordinator.email, "password": PASSWORD, "csrf_token": _token(page),
             **_carried(page)}  # fmt: skip
    back = guarded.post("/connexion?next=/espace/saisie", data=login)
    form = back.get_data(as_text=True)
    assert back.status_code == 200
    assert "une demande au téléphone</h1>" in form and "Vous êtes reconnecté" in form
    assert 'value="Martin"' in form and 'value="06 12 34 56 78"' in form
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in form
    assert 'name="nonce" value="call-1"' in form
    assert count(session, Request) == 0  # checked by the coordinator before it is sent
    # That page answers the login: reloading it sends the login again, with the token of
    # before it. Logged in already, the coordinator gets the form back, not a second login.
    reloaded = guarded.post("/connexion?next=/espace/saisie", data=login)
    again = reloaded.get_data(as_text=True)
    assert reloaded.status_code == 400
    assert "une demande au téléphone</h1>" in again and 'value="Martin"' in again
    assert "Connexion à l'espace coordination" not in again
    form = again

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
    # The same POST from another site's page shows nothing of what it sent.
    forged = guarded.post("/orienter", data=answers(nonce="r-10", csrf_token=stale),
                          headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert forged.status_code == 400 and 'value="Martin"' not in forged.get_data(as_text=True)


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


def test_a_message_template_written_past_the_end_of_the_session_is_not_lost(
    guarded: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    admin = make_user(make_territory("CPTS Lys", ["59017"]), Role.CPTS_ADMIN)
    _log_in(guarded, admin)
    url = "/espace/modeles/acknowledgement/sms"
    stale = _token(guarded.get(url).get_data(as_text=True))
    guarded.delete_cookie("orientation_session")
    body = "{{ cpts_name }} : bien reçu, référence {{ reference }}. Suivi : {{ link }}"
    page = guarded.post(url, data={"body": body, "action": "save", "csrf_token": stale})
    assert page.status_code == 401
    login = page.get_data(as_text=True)
    back = guarded.post(f"/connexion?next={url}", data={
        "email": admin.email, "password": PASSWORD, "csrf_token": _token(login),
        **_carried(login),
    })  # fmt: skip
    form = back.get_data(as_text=True)
    assert "Vous êtes reconnecté" in form and html.escape("bien reçu, référence") in form
    assert f'action="{url}"' in form  # sent to the editor, not to the login URL it is shown at
    assert session.scalars(select(MessageTemplate)).all() == []  # not saved before checking
    guarded.post(url, data={"body": body, "action": "save", "csrf_token": _token(form)})
    assert session.scalars(select(MessageTemplate)).one().body == body


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
        # Nor posted to the login page itself, as if carried from a kept form.
        carried = {f"carried-{name}": value for name, value in answers(nonce="x-2").items()}
        login = sender.post("/connexion?next=/espace/saisie", data=carried, headers=headers)
        assert _carried(login.get_data(as_text=True)) == {}


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


# --- the request page, the doctor's card, the rights desk -----------------------------------


@pytest.fixture
def worked_on(
    guarded: FlaskClient, make_territory: Callable[..., Territory],
    make_user: Callable[..., User], make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> tuple[User, Request, list[Doctor]]:  # fmt: skip
    """A coordinator logged in, with a request whose nearest doctors have been asked."""
    territory = make_territory("CPTS Lys", ["59017"])
    coordinator = make_user(territory, Role.COORDINATOR)
    request = make_request(territory, Status.DOCTORS_CONTACTED, email="jeanne@example.org",
                           lat=50.688, lon=2.88)  # fmt: skip
    doctors = [make_doctor(territory, lat=50.689, lon=2.881 + i / 1000) for i in range(2)]
    _log_in(guarded, coordinator)
    return coordinator, request, doctors


def test_a_proposal_written_past_the_end_of_the_session_comes_back_as_it_was_left(
    guarded: FlaskClient, session: Session, worked_on: tuple[User, Request, list[Doctor]]
) -> None:
    coordinator, request, doctors = worked_on
    url = f"/espace/demandes/{request.id}/proposition"
    sms = "Deux médecins <b>peuvent</b> vous recevoir : appelez la coordination."
    login = _expire_and_post(guarded, url, {
        "mode": "send", "doctor_ids": [str(d.id) for d in doctors], "channels": ["sms"],
        "sms_body": sms, "email_subject": "Objet", "email_body": "Texte de l'e-mail",
        **{f"distance_{d.id}": "0.1" for d in doctors},
    })  # fmt: skip
    assert sorted(_carried_pairs(login)["carried-doctor_ids"]) == sorted(str(d.id) for d in doctors)
    reads = select(AuditEntry).where(AuditEntry.action == "request.read")
    assert session.scalars(reads).all() == []
    page = _log_in_again(guarded, coordinator, url, login)
    assert f"{html.escape(sms)}</textarea>" in page
    for doctor in doctors:  # both ticked in the proposal, as they were
        assert f'name="doctor_ids" value="{doctor.id}" checked' in page
    assert 'name="channels" value="sms" checked' in page  # e-mail was unticked: it stays so
    assert 'name="channels" value="email">' in page
    assert session.scalars(select(Message).where(Message.purpose == "proposal")).all() == []
    # Shown again is read again: audited.
    read = session.scalars(reads).all()
    assert [(a.object_id, a.user_id) for a in read] == [(str(request.id), coordinator.id)]

    sent = guarded.post(url, data={
        "mode": "send", "doctor_ids": [str(d.id) for d in doctors], "channels": ["sms"],
        "sms_body": sms, "csrf_token": _token(page),
    })  # fmt: skip
    assert sent.status_code == 302
    (message,) = session.scalars(select(Message).where(Message.purpose == "proposal")).all()
    assert message.body == sms


def test_a_phone_call_and_a_closing_reason_typed_past_the_end_of_the_session_are_kept(
    guarded: FlaskClient, session: Session, worked_on: tuple[User, Request, list[Doctor]]
) -> None:
    coordinator, request, _doctors = worked_on
    url = f"/espace/demandes/{request.id}/proposition"
    login = _expire_and_post(guarded, url, {
        "mode": "phone", "outcome": "agrees", "call_note": "Rappeler après 17 h",
    })  # fmt: skip
    page = _log_in_again(guarded, coordinator, url, login)
    assert 'name="outcome" value="agrees" checked' in page
    assert 'value="Rappeler après 17 h"' in page

    url = f"/espace/demandes/{request.id}/cloture"
    login = _expire_and_post(guarded, url, {"reason": "A trouvé un médecin seule"})
    page = _log_in_again(guarded, coordinator, url, login)
    assert 'id="close-reason" name="reason" type="text" maxlength="200" value="A trouvé' in page
    session.refresh(request)
    assert request.status is Status.DOCTORS_CONTACTED  # nothing done before it is sent again


def test_a_doctors_card_typed_past_the_end_of_the_session_is_not_lost(
    guarded: FlaskClient, session: Session, worked_on: tuple[User, Request, list[Doctor]],
    make_territory: Callable[..., Territory], make_doctor: Callable[..., Doctor],
) -> None:  # fmt: skip
    coordinator, _request, doctors = worked_on
    url = "/espace/medecins/nouveau"
    login = _expire_and_post(guarded, url, {
        "last_name": "Lefebvre", "first_name": "Claire", "postal_code": "59280",
        "commune": "Armentières", "coordinator_note": "Préfère être appelée le matin",
    })  # fmt: skip
    page = _log_in_again(guarded, coordinator, url, login)
    assert 'value="Lefebvre"' in page and "Préfère être appelée le matin</textarea>" in page
    assert session.scalars(select(Doctor).where(Doctor.last_name == "Lefebvre")).all() == []

    # Another CPTS's doctor is not shown: the coordinator starts at their home page.
    other = make_doctor(make_territory("CPTS Autre", ["59350"]), insee="59350")
    url = f"/espace/medecins/{other.id}"
    stale = _token(guarded.get("/espace/").get_data(as_text=True))
    guarded.delete_cookie("orientation_session")
    login = guarded.post(url, data={"last_name": "Pirate", "csrf_token": stale})
    home = guarded.post(f"/connexion?next={url}", data={
        "email": coordinator.email, "password": PASSWORD,
        "csrf_token": _token(login.get_data(as_text=True)),
        **_carried_pairs(login.get_data(as_text=True)),
    })  # fmt: skip
    assert home.status_code == 302 and home.headers["Location"] == "/espace/"
    session.refresh(other)
    assert other.last_name != "Pirate"


def test_a_rectification_typed_past_the_end_of_the_session_is_not_lost(
    guarded: FlaskClient, session: Session, worked_on: tuple[User, Request, list[Doctor]]
) -> None:
    coordinator, request, _doctors = worked_on
    url = f"/espace/droits/{request.id}/rectifier"
    login = _expire_and_post(guarded, url, {
        "phone": "06 99 88 77 66", "email": "jeanne.m@example.org", "street": "3 rue Neuve",
        "best_time": "le matin",
    })  # fmt: skip
    page = _log_in_again(guarded, coordinator, url, login)
    assert 'value="06 99 88 77 66"' in page and 'value="3 rue Neuve"' in page
    session.refresh(request)
    assert request.phone == "+33612345678" and request.street != "3 rue Neuve"

    url = f"/espace/droits/{request.id}"  # a right exercised, noted as it was received
    login = _expire_and_post(guarded, url, {
        "kind": "limitation", "note": "Courrier reçu le 2 décembre",
    })  # fmt: skip
    page = _log_in_again(guarded, coordinator, url, login)
    assert '<option selected value="limitation">' in page
    assert "Courrier reçu le 2 décembre</textarea>" in page
    session.refresh(request)
    assert request.processing_limited_at is None


def test_a_cptss_settings_typed_past_the_end_of_the_session_are_not_lost(
    guarded: FlaskClient, session: Session, make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:  # fmt: skip
    territory = make_territory("CPTS Lys", ["59017"])
    admin = make_user(territory, Role.CPTS_ADMIN)
    _log_in(guarded, admin)
    url = f"/admin/cpts/{territory.id}/parametres"
    login = _expire_and_post(guarded, url, {
        "contact_phone": "03 20 00 00 00", "dpo_contact": "Mme Durand, dpo@cpts-lys.fr",
        "max_distance_km": "12",
    })  # fmt: skip
    page = _log_in_again(guarded, admin, url, login)
    assert "Mme Durand, dpo@cpts-lys.fr</textarea>" in page and 'value="12"' in page
    session.refresh(territory)
    assert "Durand" not in territory.dpo_contact
