"""The year-end survey: sent once, answered once, answers kept apart from identities."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import OperationalError

from models import (
    AuditEntry,
    Message,
    Request,
    RequestEvent,
    Role,
    Status,
    SurveyAnswer,
    Territory,
    utcnow,
)
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.survey import send_surveys

SECRET = "test-secret-" + "x" * 40


@pytest.fixture
def oriented(session, make_territory, make_request):  # type: ignore[no-untyped-def]
    territory = make_territory()

    def _make(closed_at: datetime, agrees: bool = True, **kwargs):  # type: ignore[no-untyped-def]
        return make_request(
            territory, status=Status.ORIENTED, closed_at=closed_at, agrees_to_survey=agrees,
            **kwargs,
        )  # fmt: skip

    return _make


def _link(session, request) -> str:  # type: ignore[no-untyped-def]
    message = session.scalar(
        select(Message).where(Message.request_id == request.id, Message.purpose == "survey")
    )
    return re.search(r"http://localhost(/enquete/\S+)", message.body).group(1)


def test_the_survey_goes_once_to_oriented_patients_of_the_year_who_agreed(
    session, oriented, runner
):  # type: ignore[no-untyped-def]
    yes = oriented(datetime(2026, 5, 1, tzinfo=UTC))
    oriented(datetime(2026, 6, 1, tzinfo=UTC), agrees=False)
    oriented(datetime(2025, 6, 1, tzinfo=UTC))
    result = runner.invoke(args=["survey", "send", "--period", "2026"])
    assert result.exit_code == 0, result.output
    assert "1 survey message(s) queued for 2026." in result.output
    again = runner.invoke(args=["survey", "send", "--period", "2026"])
    assert "0 survey message(s)" in again.output  # no reminder, ever
    messages = session.scalars(select(Message).where(Message.purpose == "survey")).all()
    assert [m.request_id for m in messages] == [yes.id]


def test_the_period_must_be_a_year(runner):  # type: ignore[no-untyped-def]
    result = runner.invoke(args=["survey", "send", "--period", "26x"])
    assert result.exit_code != 0
    assert "--period" in result.output


def test_an_answer_is_stored_without_any_link_to_the_request(session, oriented, client):  # type: ignore[no-untyped-def]
    request = oriented(datetime(2026, 5, 1, tzinfo=UTC))
    send_surveys(session, LinkSigner(SECRET), "http://localhost", 2026, utcnow())
    link = _link(session, request)
    assert "Votre avis en 1 minute" in client.get(link).get_data(as_text=True)
    done = client.post(link, data={"found_gp": "oui", "satisfaction": "4", "comment": "Très bien"})
    assert "Merci pour votre avis" in done.get_data(as_text=True)
    answer = session.scalar(select(SurveyAnswer))
    assert (answer.period, answer.found_gp, answer.satisfaction, answer.comment) == (
        2026, True, 4, "Très bien",
    )  # fmt: skip
    columns = {c.key for c in inspect(SurveyAnswer).columns}
    assert not columns & {"id", "request_id", "reference", "created_at", "phone", "email"}
    session.refresh(request)
    assert request.survey_answered


def _row(session, request_id: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Every column of a request as stored (a plain read, not the session's objects)."""
    return dict(
        session.execute(select(Request.__table__).where(Request.id == request_id)).one()._mapping
    )


def test_answers_cannot_be_lined_up_with_the_requests_that_gave_them(session, oriented, client):  # type: ignore[no-untyped-def]
    requests = [oriented(datetime(2026, 1 + i, 1, tzinfo=UTC)) for i in range(10)]
    send_surveys(session, LinkSigner(SECRET), "http://localhost", 2026, utcnow())
    links = {r.id: _link(session, r) for r in requests}
    before = {r.id: _row(session, r.id) for r in requests}
    traces = (
        session.scalar(select(func.count()).select_from(RequestEvent)),
        session.scalar(select(func.count()).select_from(AuditEntry)),
    )
    answered = [requests[i] for i in (3, 0, 7, 5, 9, 1, 4, 8, 2, 6)]  # an order of their own
    for n, request in enumerate(answered):
        # For this test only, each comment says who answered: the truth to find back.
        reply = {"found_gp": "oui", "satisfaction": str(1 + n % 5), "comment": request.reference}
        assert client.post(links[request.id], data=reply).status_code == 200
    truth = [r.reference for r in answered]

    # The request records that it answered, and nothing else: no time, no event, no audit.
    for request in requests:
        after = _row(session, request.id)
        assert {k for k, v in after.items() if before[request.id][k] != v} == {"survey_answered"}
    assert traces == (
        session.scalar(select(func.count()).select_from(RequestEvent)),
        session.scalar(select(func.count()).select_from(AuditEntry)),
    )
    # Line the answers up, in each order they can be read in, against the requests in each
    # order their columns give (as the sequential id against the answering time once did):
    # none pairs an answer with the request that gave it.
    answers = {
        "by key": list(session.scalars(select(SurveyAnswer.comment).order_by(SurveyAnswer.key))),
        "as stored": list(session.scalars(text("SELECT comment FROM survey_answers"))),
    }
    assert sorted(answers["by key"]) == sorted(truth)
    rows = [_row(session, r.id) for r in requests]
    orders = {
        name: [r["reference"] for r in sorted(rows, key=lambda r, n=name: (r[n], r["id"]))]
        for name in ("id", "created_at", "updated_at", "consent_at", "closed_at", "survey_sent_at")
    }  # fmt: skip
    for way, found in answers.items():
        for name, order in orders.items():
            assert found != order, f"answers read {way} line up with requests by {name}"
    if session.get_bind().dialect.name == "sqlite":  # no hidden rowid keeping the arrival order
        with pytest.raises(OperationalError, match="rowid"):
            session.execute(text("SELECT rowid FROM survey_answers"))


def test_a_survey_link_opened_twice_tampered_or_for_another_purpose_gets_a_clear_page(
    session, oriented, client
):  # type: ignore[no-untyped-def]
    request = oriented(datetime(2026, 5, 1, tzinfo=UTC))
    send_surveys(session, LinkSigner(SECRET), "http://localhost", 2026, utcnow())
    link = _link(session, request)
    client.post(link, data={"found_gp": "non", "satisfaction": "2"})
    twice = client.post(link, data={"found_gp": "oui", "satisfaction": "5"})
    assert twice.status_code == 409
    assert "déjà répondu" in twice.get_data(as_text=True)
    assert len(session.scalars(select(SurveyAnswer)).all()) == 1
    assert client.get(link + "x").status_code == 404
    follow_up_token = LinkSigner(SECRET).make(LinkPurpose.PATIENT_FOLLOW_UP, request.id)
    assert client.get(f"/enquete/{follow_up_token}").status_code == 404


def test_an_expired_survey_link_says_so(session, oriented, client, monkeypatch):  # type: ignore[no-untyped-def]
    request = oriented(datetime(2026, 5, 1, tzinfo=UTC))
    send_surveys(session, LinkSigner(SECRET), "http://localhost", 2026, utcnow())
    link = _link(session, request)
    import itsdangerous.timed

    later = itsdangerous.timed.TimestampSigner.get_timestamp(None) + 91 * 86400  # type: ignore[arg-type]
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: later)
    page = client.get(link)
    assert page.status_code == 410
    assert "Ce lien a expiré" in page.get_data(as_text=True)


def test_a_missing_score_is_asked_again_and_the_comment_kept(session, oriented, client):  # type: ignore[no-untyped-def]
    request = oriented(datetime(2026, 5, 1, tzinfo=UTC))
    send_surveys(session, LinkSigner(SECRET), "http://localhost", 2026, utcnow())
    page = client.post(_link(session, request), data={"found_gp": "oui", "comment": "Merci à Anne"})
    html = page.get_data(as_text=True)
    assert "Choisissez une note de 1 à 5." in html
    assert "Merci à Anne" in html
    assert session.scalar(select(SurveyAnswer)) is None


def test_a_comment_too_long_is_named_in_the_summary_not_a_missing_answer(session, oriented, client):  # type: ignore[no-untyped-def]
    request = oriented(datetime(2026, 5, 1, tzinfo=UTC))
    send_surveys(session, LinkSigner(SECRET), "http://localhost", 2026, utcnow())
    page = client.post(
        _link(session, request),
        data={"found_gp": "oui", "satisfaction": "4", "comment": "x" * 1001},
    )
    summary = page.get_data(as_text=True).split('class="error-summary"')[1].split("</div>")[0]
    assert "Il manque une réponse" not in summary
    assert 'href="#comment"' in summary and "1000" in summary
    assert session.scalar(select(SurveyAnswer)) is None


def test_survey_results_appear_on_the_indicators_page(session, oriented, client, auth, make_user):  # type: ignore[no-untyped-def]
    request = oriented(datetime(2026, 5, 1, tzinfo=UTC))
    send_surveys(session, LinkSigner(SECRET), "http://localhost", 2026, utcnow())
    client.post(_link(session, request), data={"found_gp": "oui", "satisfaction": "5"})
    auth.login(make_user(session.get(Territory, request.territory_id), Role.COORDINATOR))
    html = client.get(
        "/espace/indicateurs", query_string={"du": "2026-01-01", "au": "2026-12-31"}
    ).get_data(as_text=True)
    assert "Réponses : 1. Ont trouvé un médecin traitant : 1 (100 %)" in html


def test_an_answer_refused_with_an_expired_session_comes_back_filled_in(  # type: ignore[no-untyped-def]
    session, oriented, settings
):
    from orientation import create_app

    request = oriented(datetime(2026, 5, 1, tzinfo=UTC))
    send_surveys(session, LinkSigner(SECRET), "http://localhost", 2026, utcnow())
    link = _link(session, request)
    app = create_app(settings.with_overrides(extra={"WTF_CSRF_ENABLED": True}))
    client = app.test_client()
    answer = {"found_gp": "oui", "satisfaction": "5", "comment": "Merci à Anne, très réactive"}
    # The phone's browser restarted between opening the link and sending: no session.
    refused = client.post(link, data={**answer, "csrf_token": "stale"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "Le formulaire a expiré" in page and "Merci à Anne, très réactive</textarea>" in page
    assert re.search(r'<input[^>]*checked[^>]*value="5"|<input[^>]*value="5"[^>]*checked', page)
    assert session.scalar(select(SurveyAnswer)) is None
    fresh = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert fresh is not None
    done = client.post(link, data={**answer, "csrf_token": fresh.group(1)})
    app.extensions["orientation.engine"].dispose()
    assert "Merci pour votre avis" in done.get_data(as_text=True)
    assert session.scalar(select(SurveyAnswer.comment)) == "Merci à Anne, très réactive"
