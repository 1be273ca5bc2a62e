"""Follow-up after a proposal: one message N days later, the answer moves the request."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from models import Message, RequestEvent, Status, Territory, utcnow
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.followup import send_follow_ups
from orientation.services.workflow import change_status

SECRET = "test-secret-" + "x" * 40


@pytest.fixture
def proposed(session, make_territory, make_request):  # type: ignore[no-untyped-def]
    """Returns a factory: a request proposed `days_ago` days ago."""
    territory = make_territory()

    def _make(days_ago: int, **kwargs):  # type: ignore[no-untyped-def]
        request = make_request(territory, status=Status.ELIGIBLE, **kwargs)
        change_status(request, Status.PROPOSED, now=utcnow() - timedelta(days=days_ago))
        session.commit()
        return request

    return _make


def _send(session) -> int:  # type: ignore[no-untyped-def]
    return send_follow_ups(session, LinkSigner(SECRET), "http://localhost", utcnow())


def _link(session, request) -> str:  # type: ignore[no-untyped-def]
    message = session.scalar(select(Message).where(Message.request_id == request.id))
    return re.search(r"http://localhost(/suivi/rendez-vous/\S+)", message.body).group(1)


def test_a_follow_up_is_sent_once_thirty_days_after_the_proposal(session, proposed):  # type: ignore[no-untyped-def]
    due = proposed(31)
    recent = proposed(5)
    assert _send(session) == 1
    assert _send(session) == 0  # the daily timer runs again: nothing twice
    messages = session.scalars(select(Message).where(Message.purpose == "follow_up")).all()
    assert [m.request_id for m in messages] == [due.id]
    assert messages[0].recipient == "+33612345678"
    session.refresh(recent)
    assert recent.follow_up_sent_at is None


def test_the_delay_is_a_setting_of_the_territory(session, proposed):  # type: ignore[no-untyped-def]
    request = proposed(10)
    assert _send(session) == 0
    session.get(Territory, request.territory_id).follow_up_days = 7
    session.commit()
    assert _send(session) == 1


def test_an_appointment_and_a_declaration_make_the_request_oriented(session, proposed, client):  # type: ignore[no-untyped-def]
    request = proposed(31)
    _send(session)
    link = _link(session, request)
    page = client.get(link)
    assert page.status_code == 200
    assert "premier rendez-vous" in page.get_data(as_text=True)
    done = client.post(link, data={"appointment": "oui", "declared": "oui"})
    assert "trouvé un médecin traitant" in done.get_data(as_text=True)
    session.refresh(request)
    assert request.status is Status.ORIENTED and not request.needs_follow_up
    again = client.get(link)
    assert again.status_code == 409
    assert "déjà répondu" in again.get_data(as_text=True)


def test_no_appointment_puts_the_request_back_in_the_queue_with_a_flag(session, proposed, client):  # type: ignore[no-untyped-def]
    request = proposed(31)
    _send(session)
    client.post(_link(session, request), data={"appointment": "non", "declared": "non"})
    session.refresh(request)
    assert request.status is Status.IN_PROGRESS
    assert request.needs_follow_up
    kinds = [e.kind for e in session.scalars(select(RequestEvent).where(
        RequestEvent.request_id == request.id).order_by(RequestEvent.id))]  # fmt: skip
    assert kinds[-2:] == ["follow_up_answer", "status"]


def test_a_missing_declaration_is_flagged_for_the_coordinator(session, proposed, client):  # type: ignore[no-untyped-def]
    request = proposed(31)
    _send(session)
    page = client.post(_link(session, request), data={"appointment": "oui", "declared": "non"})
    assert "déclaration de médecin traitant" in page.get_data(as_text=True)
    session.refresh(request)
    assert request.status is Status.ORIENTED and request.needs_follow_up


def test_an_unanswered_question_keeps_the_other_answer(session, proposed, client):  # type: ignore[no-untyped-def]
    request = proposed(31)
    _send(session)
    page = client.post(_link(session, request), data={"appointment": "oui"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Répondez par oui ou par non." in html
    assert re.search(r'value="oui"\s+checked|checked[^>]*value="oui"', html)
    session.refresh(request)
    assert request.status is Status.PROPOSED


def test_a_tampered_or_expired_link_gets_a_clear_page(session, proposed, client, monkeypatch):  # type: ignore[no-untyped-def]
    request = proposed(31)
    _send(session)
    link = _link(session, request)
    tampered = client.get(link[:-3] + "abc")
    assert tampered.status_code == 404
    assert "pas valide" in tampered.get_data(as_text=True)
    other = LinkSigner(SECRET).make(LinkPurpose.PATIENT_SURVEY, request.id)
    assert client.get(f"/suivi/rendez-vous/{other}").status_code == 404

    import itsdangerous.timed

    later = itsdangerous.timed.TimestampSigner.get_timestamp(None) + 61 * 86400  # type: ignore[arg-type]
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: later)
    expired = client.get(link)
    assert expired.status_code == 410
    assert "a expiré" in expired.get_data(as_text=True)


def test_the_command_sends_the_follow_ups(session, proposed, runner):  # type: ignore[no-untyped-def]
    proposed(40, email="a@example.org", preferred_channel="email")
    result = runner.invoke(args=["followup", "send"])
    assert result.exit_code == 0, result.output
    assert "1 follow-up message(s) queued." in result.output
    message = session.scalar(select(Message))
    assert message.channel.value == "email" and message.subject


def test_an_answer_refused_with_an_expired_session_comes_back_filled_in(  # type: ignore[no-untyped-def]
    session, proposed, settings
):
    from orientation import create_app

    request = proposed(31)
    _send(session)
    link = _link(session, request)
    app = create_app(settings.with_overrides(extra={"WTF_CSRF_ENABLED": True}))
    client = app.test_client()
    refused = client.post(link, data={"appointment": "oui", "declared": "non", "csrf_token": "x"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "Le formulaire a expiré" in page
    assert re.search(r'<input[^>]*checked[^>]*value="non"|<input[^>]*value="non"[^>]*checked', page)
    session.refresh(request)
    assert request.status is Status.PROPOSED  # nothing taken
    fresh = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert fresh is not None
    done = client.post(
        link, data={"appointment": "oui", "declared": "non", "csrf_token": fresh.group(1)}
    )
    app.extensions["orientation.engine"].dispose()
    assert done.status_code == 200
    session.refresh(request)
    assert request.status is Status.ORIENTED and request.needs_follow_up
