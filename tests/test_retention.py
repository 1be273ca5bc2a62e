"""Retention: `orientation purge` anonymises old requests and message bodies, per CPTS settings."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, Message, Request, Status, Territory, utcnow
from notifications.outbox import queue_message
from orientation.services.overview import territory_overview
from orientation.services.retention import months_before, purge
from orientation.services.rights_limitation import lift_limitation, limit_processing

MakeRequest = Callable[..., Request]
DAY = timedelta(days=1)


def _closed(make_request: MakeRequest, territory: Territory, status: Status, months_ago: float,
            **kwargs: object) -> Request:  # fmt: skip
    closed_at = utcnow() - timedelta(days=30.5 * months_ago)
    return make_request(
        territory,
        status,
        created_at=closed_at - 20 * DAY,
        closed_at=closed_at,
        persons=[("Paul", "Durand", date(1948, 7, 14))],
        email="paul.durand@example.org",
        **kwargs,
    )


def _message(session: Session, territory: Territory, days_ago: int, key: str) -> Message:
    message = queue_message(
        session,
        territory_id=territory.id,
        channel=Channel.EMAIL,
        recipient="medecin@example.org",
        body="Une patiente de 74 ans à Armentières cherche un médecin.",
        purpose="doctor_request",
        idempotency_key=key,
    )
    message.created_at = utcnow() - days_ago * DAY
    session.commit()
    return message


def test_months_before_counts_calendar_months_and_clamps_to_the_month_end() -> None:
    assert months_before(datetime(2026, 3, 31, 4, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, 4, tzinfo=UTC
    )
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 12) == datetime(2025, 1, 15, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 3) == datetime(2025, 10, 15, tzinfo=UTC)


def test_finished_requests_are_anonymised_twelve_months_after_closing_not_before(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    territory = make_territory()
    old = [_closed(make_request, territory, s, 13) for s in (Status.CLOSED, Status.WITHDRAWN,
                                                              Status.ORIENTED)]  # fmt: skip
    recent = _closed(make_request, territory, Status.CLOSED, 11)
    still_open = make_request(territory, Status.IN_PROGRESS, created_at=utcnow() - 800 * DAY)
    [report] = purge(session, utcnow())
    session.commit()
    assert report.closed_anonymised == 3
    session.expire_all()
    for request in old:
        done = session.get(Request, request.id)
        assert done is not None and done.anonymised_at is not None
        assert done.email == "" and done.persons[0].last_name == ""
    for request in (recent, still_open):
        kept = session.get(Request, request.id)
        assert kept is not None and kept.anonymised_at is None and kept.phone


def test_out_of_territory_requests_go_after_three_months(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    territory = make_territory()
    old = make_request(territory, Status.OUT_OF_TERRITORY, created_at=utcnow() - 100 * DAY)
    young = make_request(territory, Status.OUT_OF_TERRITORY, created_at=utcnow() - 60 * DAY)
    [report] = purge(session, utcnow())
    session.commit()
    assert report.out_of_territory_anonymised == 1
    session.expire_all()
    assert session.get(Request, old.id).anonymised_at is not None  # type: ignore[union-attr]
    assert session.get(Request, young.id).anonymised_at is None  # type: ignore[union-attr]


def test_message_bodies_are_replaced_after_three_months_and_the_sending_is_kept(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = make_territory()
    old = _message(session, territory, 100, "old")
    young = _message(session, territory, 20, "young")
    [report] = purge(session, utcnow())
    session.commit()
    assert report.message_bodies_purged == 1
    session.expire_all()
    purged = session.get(Message, old.id)
    assert purged is not None and "74 ans" not in purged.body
    assert purged.body_purged_at is not None and purged.purpose == "doctor_request"
    assert "74 ans" in session.get(Message, young.id).body  # type: ignore[union-attr]


def test_each_cpts_keeps_data_for_its_own_configured_durations(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    strict, patient = make_territory(), make_territory()
    patient.retention_closed_months = 24
    strict.retention_closed_months = 6
    session.commit()
    in_strict = _closed(make_request, strict, Status.CLOSED, 7)
    in_patient = _closed(make_request, patient, Status.CLOSED, 13)
    reports = {report.territory_id: report for report in purge(session, utcnow())}
    session.commit()
    assert reports[strict.id].closed_anonymised == 1
    assert reports[patient.id].closed_anonymised == 0
    session.expire_all()
    assert session.get(Request, in_strict.id).anonymised_at is not None  # type: ignore[union-attr]
    assert session.get(Request, in_patient.id).anonymised_at is None  # type: ignore[union-attr]


def test_a_second_purge_finds_nothing_to_do(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    territory = make_territory()
    _closed(make_request, territory, Status.CLOSED, 14)
    _message(session, territory, 200, "old")
    assert purge(session, utcnow())[0].total == 2
    session.commit()
    assert purge(session, utcnow())[0].total == 0


def test_indicators_are_the_same_before_and_after_purging(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    territory = make_territory()
    for months, status in ((13, Status.ORIENTED), (14, Status.CLOSED), (2, Status.ORIENTED),
                           (20, Status.WITHDRAWN)):  # fmt: skip
        _closed(make_request, territory, status, months, is_priority=months > 10,
                need_home_visits=True)  # fmt: skip
    make_request(territory, Status.OUT_OF_TERRITORY, created_at=utcnow() - 200 * DAY)

    def indicators() -> tuple[object, ...]:
        session.expire_all()
        requests = session.scalars(select(Request).where(Request.territory_id == territory.id))
        rows = [
            (r.status, r.created_at, r.closed_at, r.commune_insee, r.is_priority,
             r.need_home_visits, r.persons[0].birth_date.year if r.persons[0].birth_date else 0)
            for r in requests
        ]  # fmt: skip
        return territory_overview(session, territory, utcnow()), Counter(rows)

    before = indicators()
    assert sum(r.total for r in purge(session, utcnow())) == 4
    session.commit()
    assert indicators() == before


def test_the_purge_command_reports_what_it_did_per_cpts(
    runner: FlaskCliRunner,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
) -> None:
    territory = make_territory(name="CPTS Purgée")
    _closed(make_request, territory, Status.CLOSED, 13)
    make_request(territory, Status.OUT_OF_TERRITORY, created_at=utcnow() - 100 * DAY)
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert (
        "CPTS Purgée: 1 closed request(s) and 1 out-of-territory request(s) anonymised, "
        "0 message body(ies) purged." in result.output
    )
    again = runner.invoke(args=["purge"])
    assert "0 closed request(s) and 0 out-of-territory" in again.output


def test_a_limited_request_and_its_messages_outlive_their_retention_until_the_limit_is_lifted(
    runner: FlaskCliRunner,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: MakeRequest,
) -> None:
    # Article 18.1.b/c: a patient may ask to limit processing instead of erasure, or because
    # they need the data kept for a claim; erasing on schedule would defeat that.
    territory = make_territory(name="CPTS Limitée")
    limited = _closed(make_request, territory, Status.CLOSED, 13)
    outside = make_request(territory, Status.OUT_OF_TERRITORY, created_at=utcnow() - 100 * DAY)
    other = _closed(make_request, territory, Status.CLOSED, 13)
    for request in (limited, outside):
        assert limit_processing(session, request, utcnow(), actor_label="test")
    sent = _message(session, territory, 100, "to-the-limited-patient")
    sent.request_id = limited.id
    to_doctor = _message(session, territory, 100, "to-a-doctor")  # no request: purged as before
    session.commit()

    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert (
        "CPTS Limitée: 1 closed request(s) and 0 out-of-territory request(s) anonymised, "
        "1 message body(ies) purged; 2 request(s) past retention kept: processing limited"
        in result.output
    )
    session.expire_all()
    assert session.get(Request, other.id).anonymised_at is not None  # type: ignore[union-attr]
    for request in (limited, outside):
        kept = session.get(Request, request.id)
        assert kept is not None and kept.anonymised_at is None and kept.persons[0].last_name
    assert "74 ans" in session.get(Message, sent.id).body  # type: ignore[union-attr]
    assert "74 ans" not in session.get(Message, to_doctor.id).body  # type: ignore[union-attr]

    lifted = session.get(Request, limited.id)
    assert lifted is not None and lift_limitation(lifted, utcnow(), actor_label="test")
    session.commit()
    [report] = purge(session, utcnow())
    session.commit()
    assert (report.closed_anonymised, report.limited_kept) == (1, 1)
    session.expire_all()
    assert session.get(Request, limited.id).anonymised_at is not None  # type: ignore[union-attr]
    assert "74 ans" not in session.get(Message, sent.id).body  # type: ignore[union-attr]
