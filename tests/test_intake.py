"""The public questionnaire: a person submits once, gets a reference, a private link and an SMS."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Channel,
    Message,
    MessageStatus,
    Request,
    RequestEvent,
    Source,
    Status,
    Territory,
    utcnow,
)
from notifications.sms import sms_length
from orientation import Settings
from orientation.links import LinkPurpose, LinkSigner


def answers(**changes: Any) -> dict[str, str]:
    """A complete, valid questionnaire as the browser posts it."""
    form = {
        "nonce": "",
        "source_tag": "pharmacie",
        "persons-0-first_name": "Jeanne",
        "persons-0-last_name": "Martin",
        "persons-0-birth_date": "1980-05-04",
        "phone": "06 12 34 56 78",
        "email": "",
        "preferred_channel": "sms",
        "street": "12 rue de la Gare",
        "postal_code": "59280",
        "commune": "Armentières",
        "reason": "gp_left",
        "consent": "on",
    }
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def count(session: Session, model: type) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


@pytest.fixture
def lys(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory("CPTS Lys", ["59017", "59431", "59143"], dpo_contact="dpo@lys.example")


def test_the_questionnaire_opens_from_the_flyer_url_with_the_rgpd_notice(
    client: FlaskClient, lys: Territory
) -> None:
    page = client.get(f"/cpts/{lys.slug}/demande?source=pharmacie")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Trouver un médecin traitant" in html
    assert 'name="source_tag" value="pharmacie"' in html
    assert "<strong>CPTS Lys</strong> traite les informations" in html
    assert "dpo@lys.example" in html
    assert "12 mois après la clôture" in html
    assert 'name="website"' in html  # the honeypot


def test_an_unknown_cpts_is_a_404(client: FlaskClient, lys: Territory) -> None:
    assert client.get("/cpts/nowhere/demande").status_code == 404


def test_a_valid_submission_is_eligible_and_acknowledged_by_sms(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    response = client.post(f"/cpts/{lys.slug}/demande", data=answers(nonce="n-1"))
    assert response.status_code == 303
    confirmation = client.get(response.headers["Location"])
    html = confirmation.get_data(as_text=True)
    request = session.scalars(select(Request)).one()
    assert request.reference in html
    assert "/suivi/" in html and "Nous vous l'envoyons aussi par SMS." in html
    assert request.status is Status.ELIGIBLE
    assert request.source is Source.QUESTIONNAIRE and request.source_tag == "pharmacie"
    assert request.phone == "+33612345678"
    assert request.commune_insee == "59017"
    assert [p.first_name for p in request.persons] == ["Jeanne"]
    events = session.scalars(select(RequestEvent).order_by(RequestEvent.id)).all()
    assert [(e.kind, e.to_status) for e in events] == [
        ("submitted", "received"),
        ("status", "eligible"),
    ]
    message = session.scalars(select(Message)).one()
    assert message.channel is Channel.SMS and message.recipient == "+33612345678"
    assert request.reference in message.body and "/suivi/" in message.body
    assert sms_length(message.body).encoding == "GSM-7"
    # Queued for the dispatcher, due at once; the submission audited with its source.
    assert message.status is MessageStatus.QUEUED and message.attempts == 0
    assert message.request_id == request.id and message.next_attempt_at <= utcnow()
    submitted = select(AuditEntry).where(AuditEntry.action == "request.submitted")
    entry = session.scalars(submitted).one()
    assert (entry.object_id, entry.territory_id) == (str(request.id), lys.id)
    assert entry.details == {"source": "questionnaire"} and entry.at <= utcnow()


def test_a_double_tap_creates_one_request(
    client: FlaskClient, session: Session, lys: Territory, settings: Settings
) -> None:
    first = client.post(f"/cpts/{lys.slug}/demande", data=answers(nonce="same-nonce"))
    second = client.post(f"/cpts/{lys.slug}/demande", data=answers(nonce="same-nonce"))
    signer = LinkSigner(settings.secret_key)
    subjects = {
        signer.read(LinkPurpose.PATIENT_REQUEST, r.headers["Location"].split("/")[2]).subject_id
        for r in (first, second)
    }
    assert subjects == {session.scalars(select(Request)).one().id}
    assert count(session, Request) == 1
    assert count(session, Message) == 1


def test_the_form_sent_again_with_changes_gets_the_request_it_already_made(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    # The back button after the confirmation shows the form with its nonce: the person edits a
    # field and sends it again. One request, the first; its private link lets them correct it.
    first = client.post(f"/cpts/{lys.slug}/demande", data=answers(nonce="back"))
    second = client.post(f"/cpts/{lys.slug}/demande", data=answers(nonce="back", street="3 rue X"))
    assert (first.status_code, second.status_code) == (303, 303)
    request = session.scalars(select(Request)).one()
    assert request.street == answers()["street"]
    shown = client.get(second.headers["Location"]).get_data(as_text=True)
    assert request.reference in shown


def test_the_confirmation_says_how_the_private_link_reaches_the_person(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    def confirmation(**changes: str) -> str:
        sent = client.post(f"/cpts/{lys.slug}/demande", data=answers(**changes))
        return client.get(sent.headers["Location"]).get_data(as_text=True)

    by_email = confirmation(nonce="e-1", email="jeanne@example.fr", preferred_channel="email")
    assert "Nous vous l'envoyons aussi par e-mail." in by_email
    landline = confirmation(nonce="l-1", phone="03 20 12 34 56", preferred_channel="phone")
    assert "Sans portable ni e-mail, nous ne pouvons pas vous l'envoyer" in landline
    assert "par SMS" not in landline
    # What the page says is what was queued: one e-mail, nothing for the landline.
    assert [m.channel for m in session.scalars(select(Message))] == [Channel.EMAIL]


def test_a_commune_outside_the_territory_is_out_of_territory_with_cpam_guidance(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    response = client.post(
        f"/cpts/{lys.slug}/demande",
        data=answers(postal_code="59000", commune="Lille"),
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert session.scalars(select(Request)).one().status is Status.OUT_OF_TERRITORY
    assert "ameli.fr" in html
    assert "hors de notre territoire" in session.scalars(select(Message)).one().body


def test_out_of_territory_points_to_the_hosted_cpts_and_forwards_the_request(
    client: FlaskClient,
    session: Session,
    lys: Territory,
    make_territory: Callable[..., Territory],
) -> None:
    lille = make_territory("CPTS Grand Lille", ["59350"])
    response = client.post(
        f"/cpts/{lys.slug}/demande",
        data=answers(postal_code="59000", commune="Lille"),
        follow_redirects=True,
    )
    html = response.get_data(as_text=True)
    assert "CPTS Grand Lille couvre Lille" in html
    assert lille.contact_phone in html
    token = response.request.path.split("/")[2]
    forwarded = client.post(f"/suivi/{token}/transmettre/{lille.slug}", follow_redirects=True)
    assert forwarded.status_code == 200
    again = client.post(f"/suivi/{token}/transmettre/{lille.slug}")
    assert again.status_code == 303  # a second tap finds the copy already made
    requests = session.scalars(select(Request).order_by(Request.id)).all()
    assert [(r.territory_id, r.status) for r in requests] == [
        (lys.id, Status.CLOSED),
        (lille.id, Status.ELIGIBLE),
    ]
    assert "CPTS Grand Lille" in requests[0].closed_reason
    # One acknowledgement reaches the person: the other CPTS's, with the reference that counts.
    queued = session.scalars(select(Message).where(Message.status == MessageStatus.QUEUED)).all()
    assert [m.request_id for m in queued] == [requests[1].id]


def test_priority_comes_from_ages_ald_and_css(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    client.post(f"/cpts/{lys.slug}/demande", data=answers(nonce="a"))
    client.post(
        f"/cpts/{lys.slug}/demande",
        data=answers(
            nonce="b",
            **{
                "persons-1-first_name": "Léo",
                "persons-1-last_name": "Martin",
                "persons-1-birth_date": "2024-01-02",
            },
        ),
    )
    client.post(f"/cpts/{lys.slug}/demande", data=answers(nonce="c", **{"persons-0-ald": "on"}))
    client.post(f"/cpts/{lys.slug}/demande", data=answers(nonce="d", css_ame="on"))
    client.post(
        f"/cpts/{lys.slug}/demande",
        data=answers(nonce="e", **{"persons-0-birth_date": "1940-01-01"}),
    )
    flags = [r.is_priority for r in session.scalars(select(Request).order_by(Request.id))]
    assert flags == [False, True, True, True, True]


def test_the_honeypot_saves_nothing(client: FlaskClient, session: Session, lys: Territory) -> None:
    response = client.post(f"/cpts/{lys.slug}/demande", data=answers(website="http://spam"))
    assert response.status_code == 200
    assert count(session, Request) == 0


def test_a_bad_commune_reshows_the_form_with_the_communes_of_the_postal_code(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    response = client.post(f"/cpts/{lys.slug}/demande", data=answers(commune="Saint-Omer"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "n&#39;est pas une commune du code postal 59280" in html
    assert '<select id="commune" name="commune_insee"' in html
    assert '<option value="59017">Armentières</option>' in html
    assert 'value="Jeanne"' in html  # the rest is kept
    chosen = client.post(
        f"/cpts/{lys.slug}/demande", data=answers(commune="", commune_insee="59017")
    )
    assert chosen.status_code == 303
    assert count(session, Request) == 1


def test_the_person_sees_completes_and_withdraws_through_the_private_link(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    location = client.post(f"/cpts/{lys.slug}/demande", data=answers()).headers["Location"]
    link = location.removesuffix("/confirmation")
    page = client.get(link).get_data(as_text=True)
    assert "Jeanne Martin, 04/05/1980" in page
    bad = client.post(f"{link}/completer", data={"comment": "", "phone": "12"})
    assert bad.status_code == 422
    assert "Ce numéro de téléphone" in bad.get_data(as_text=True)
    client.post(
        f"{link}/completer", data={"comment": "Je préfère le matin <b>", "phone": "07 81 22 33 44"}
    )
    request = session.scalars(select(Request)).one()
    session.refresh(request)
    assert request.phone == "+33781223344"
    assert "Je préfère le matin <b>" in [e.note for e in request.events]
    client.post(f"{link}/retirer", data={"confirm": "on"})
    session.refresh(request)
    assert request.status is Status.WITHDRAWN
    assert "Votre demande est retirée" in client.get(link + "?fait=retiree").get_data(as_text=True)


def test_a_tampered_private_link_is_a_404(client: FlaskClient, lys: Territory) -> None:
    assert client.get("/suivi/not-a-token").status_code == 404


def test_the_form_needs_its_csrf_token_and_is_rate_limited_per_client(
    settings: Settings, lys: Territory
) -> None:
    import re

    from orientation import create_app

    app = create_app(
        settings.with_overrides(extra={"WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": True})
    )
    client = app.test_client()
    url = f"/cpts/{lys.slug}/demande"
    assert client.post(url, data=answers(nonce="x0")).status_code == 400  # no token
    page = client.get(url).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    statuses = [
        client.post(url, data=answers(nonce=f"x{i}", csrf_token=found.group(1))).status_code
        for i in range(1, 12)
    ]
    app.extensions["orientation.engine"].dispose()
    assert statuses == [303] * 10 + [429]  # 10 per minute and per client address


def test_the_rate_limit_counts_only_real_submissions_and_tells_the_client_when_to_retry(
    settings: Settings, lys: Territory
) -> None:
    import re

    from orientation import create_app

    app = create_app(settings.with_overrides(extra={
        "WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": True,
        "INTAKE_RATE_LIMIT": "3 per minute;5 per hour",
    }))  # fmt: skip
    client = app.test_client()
    url = f"/cpts/{lys.slug}/demande"
    for _ in range(5):  # showing the form again and again is not submitting it
        page = client.get(url)
        assert page.status_code == 200
        assert "X-RateLimit-Remaining" not in page.headers
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert found is not None
    forged = [client.post(url, data=answers(nonce=f"f{i}")).status_code for i in range(4)]
    assert forged == [400] * 4  # refused by the CSRF check, not counted against the address
    responses = [
        client.post(url, data=answers(nonce=f"r{i}", csrf_token=found.group(1))) for i in range(4)
    ]
    app.extensions["orientation.engine"].dispose()
    assert [r.status_code for r in responses] == [303, 303, 303, 429]
    # The limit closest to running out (3 per minute, not 5 per hour) counts down.
    assert [r.headers["X-RateLimit-Limit"] for r in responses[:3]] == ["3"] * 3
    assert [r.headers["X-RateLimit-Remaining"] for r in responses[:3]] == ["2", "1", "0"]
    refused = responses[3]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    page = refused.get_data(as_text=True)
    assert "Trop de demandes depuis cette connexion" in page
    # The form comes back with what the person typed, ready to send again in a minute.
    assert 'value="Jeanne"' in page and 'value="06 12 34 56 78"' in page
    assert 'name="nonce" value="r3"' in page


def test_a_submission_goes_through_when_the_rate_limit_storage_is_down(
    settings: Settings, lys: Territory, session: Session, caplog: pytest.LogCaptureFixture
) -> None:
    from orientation import create_app

    app = create_app(settings.with_overrides(
        ratelimit_storage_url="redis://127.0.0.1:1",  # nothing listens there: Redis is down
        extra={"WTF_CSRF_ENABLED": False, "RATELIMIT_ENABLED": True},
    ))  # fmt: skip
    response = app.test_client().post(f"/cpts/{lys.slug}/demande", data=answers(nonce="down-1"))
    app.extensions["orientation.engine"].dispose()
    assert response.status_code == 303
    assert count(session, Request) == 1
    assert "rate limits not counted" in caplog.text


def test_an_expired_form_comes_back_filled_in_and_nothing_is_saved(
    settings: Settings, lys: Territory, session: Session
) -> None:
    import re

    from orientation import create_app

    app = create_app(settings.with_overrides(extra={"WTF_CSRF_ENABLED": True}))
    client = app.test_client()
    url = f"/cpts/{lys.slug}/demande"
    # The phone's browser was restarted: no session cookie, the token of the old page is stale.
    response = client.post(url, data=answers(nonce="kept-1", csrf_token="stale", comment="<b>x"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Le formulaire a expiré" in page
    assert 'value="Martin"' in page and "&lt;b&gt;x" in page and 'value="kept-1"' in page
    assert count(session, Request) == 0
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert fresh is not None  # sending it again works
    again = client.post(url, data=answers(nonce="kept-1", csrf_token=fresh.group(1)))
    # Posted by another site's page: its answers are not shown as if the person had typed them.
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
        forged = client.post(url, data=answers(nonce="kept-2", csrf_token="x", comment="<b>x"),
                             headers=headers)  # fmt: skip
        assert forged.status_code == 400 and 'value="Martin"' not in forged.get_data(as_text=True)
    app.extensions["orientation.engine"].dispose()
    assert again.status_code == 303
    assert count(session, Request) == 1


def test_a_message_refused_on_the_private_link_comes_back_typed_in(
    settings: Settings, lys: Territory, session: Session
) -> None:
    import re

    from orientation import create_app

    app = create_app(settings.with_overrides(extra={
        "WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": True, "INTAKE_RATE_LIMIT": "1 per minute",
    }))  # fmt: skip
    client = app.test_client()
    form = client.get(f"/cpts/{lys.slug}/demande").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token is not None
    sent = client.post(f"/cpts/{lys.slug}/demande", data=answers(csrf_token=token.group(1)))
    link = sent.headers["Location"].removesuffix("/confirmation")
    message = {"comment": "Je travaille de nuit, appelez l'après-midi", "phone": "07 81 22 33 44"}
    # The phone's browser restarted: no session, the page's token is stale.
    other = app.test_client()
    expired = other.post(f"{link}/completer", data={**message, "csrf_token": "stale"})
    page = expired.get_data(as_text=True)
    assert expired.status_code == 400
    assert "Le formulaire a expiré" in page and "Rien n'est encore enregistré" in page
    assert "Je travaille de nuit, appelez l&#39;après-midi</textarea>" in page
    assert 'value="07 81 22 33 44"' in page
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert fresh is not None
    # A second message within the minute is over the limit: it comes back too.
    first = other.post(f"{link}/completer", data={**message, "csrf_token": fresh.group(1)})
    assert first.status_code == 303
    refused = other.post(f"{link}/completer", data={**message, "csrf_token": fresh.group(1)})
    app.extensions["orientation.engine"].dispose()
    assert refused.status_code == 429
    assert "Trop de demandes depuis cette connexion" in refused.get_data(as_text=True)
    assert 'value="07 81 22 33 44"' in refused.get_data(as_text=True)
    request = session.scalars(select(Request)).one()
    session.refresh(request)
    notes = [e.note for e in request.events]
    assert notes.count("Je travaille de nuit, appelez l'après-midi") == 1  # only the one taken
