"""The cascade asks doctors one by one, nearest first, moving on after the delay in working
hours, and alerts the coordinator when nobody is left."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    ContactStatus,
    Doctor,
    DoctorContact,
    Message,
    Request,
    Status,
    Territory,
    utcnow,
)
from orientation.links import LinkSigner
from orientation.services.cascade import add_working_hours, advance_cascades, start_cascade
from orientation.services.doctor_contacts import Links, load_answer_case, record_answer
from orientation.services.queue import QueueFilters, queue_page

PARIS = ZoneInfo("Europe/Paris")
MONDAY_9H = datetime(2026, 11, 23, 9, 0, tzinfo=PARIS).astimezone(UTC)
LINKS = Links(LinkSigner("test-secret-" + "x" * 40), "http://localhost")


def _paris(moment: datetime) -> tuple[str, int, int]:
    local = moment.astimezone(PARIS)
    return local.strftime("%A"), local.hour, local.minute


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (datetime(2026, 11, 27, 17, 0, tzinfo=PARIS), 2, ("Monday", 10, 0)),  # over the weekend
        (datetime(2026, 11, 23, 9, 0, tzinfo=PARIS), 48, ("Monday", 12, 0)),  # 5 x 9 h + 3 h
        (datetime(2026, 11, 23, 20, 30, tzinfo=PARIS), 1, ("Tuesday", 10, 0)),  # asked at night
        (datetime(2026, 11, 28, 11, 0, tzinfo=PARIS), 9, ("Monday", 18, 0)),  # asked on Saturday
    ],
)
def test_the_answer_delay_counts_only_working_hours(
    start: datetime, hours: int, expected: tuple[str, int, int]
) -> None:
    assert _paris(add_working_hours(start, hours)) == expected


def _setup(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> tuple[Territory, Request, Doctor, Doctor]:
    territory = make_territory()
    request = make_request(territory, lat=50.688, lon=2.88)
    nearest = make_doctor(territory, email="a@example.org", lat=50.689, lon=2.881)
    second = make_doctor(territory, email="b@example.org", lat=50.70, lon=2.90)
    start_cascade(session, territory, request, links=LINKS, now=MONDAY_9H, user_id=None)  # type: ignore[arg-type]
    session.commit()
    return territory, request, nearest, second


def _contacts(session: Session) -> list[tuple[int, ContactStatus]]:
    return [
        (c.doctor_id, c.status)
        for c in session.scalars(select(DoctorContact).order_by(DoctorContact.position))
    ]


def test_cascade_moves_to_the_next_doctor_after_the_delay_then_alerts(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory, request, nearest, second = _setup(session, make_territory, make_request, make_doctor)
    assert _contacts(session) == [(nearest.id, ContactStatus.ASKED)]

    # 47 working hours later (next Monday 11h): still waiting.
    summary = advance_cascades(session, MONDAY_9H + timedelta(days=7, hours=2), LINKS)
    session.commit()
    assert (summary.expired, summary.asked) == (0, 0)

    summary = advance_cascades(session, MONDAY_9H + timedelta(days=7, hours=3), LINKS)
    session.commit()
    assert (summary.expired, summary.asked, summary.exhausted) == (1, 1, 0)
    assert _contacts(session) == [
        (nearest.id, ContactStatus.EXPIRED),
        (second.id, ContactStatus.ASKED),
    ]
    recipients = session.scalars(select(Message.recipient).order_by(Message.id)).all()
    assert recipients == ["a@example.org", "b@example.org"]

    # The second doctor declines: at the next run nobody is left, the coordinator is alerted.
    case = load_answer_case(session, _last_contact_id(session))
    assert case is not None
    record_answer(session, case, False, MONDAY_9H + timedelta(days=8))
    session.commit()
    summary = advance_cascades(session, MONDAY_9H + timedelta(days=8, minutes=5), LINKS)
    session.commit()
    assert summary.exhausted == 1
    session.refresh(request)
    assert request.cascade_state == "exhausted"
    assert request.events[-1].kind == "cascade_exhausted"
    alerts = queue_page(session, territory.id, MONDAY_9H, QueueFilters(alert_only=True))
    assert [row.request.id for row in alerts.rows] == [request.id]


def _last_contact_id(session: Session) -> int:
    return session.scalars(select(DoctorContact.id).order_by(DoctorContact.id.desc())).first()  # type: ignore[return-value]


def test_an_accept_ends_the_cascade(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    _, request, nearest, _ = _setup(session, make_territory, make_request, make_doctor)
    case = load_answer_case(session, _last_contact_id(session))
    assert case is not None
    record_answer(session, case, True, MONDAY_9H + timedelta(hours=1))
    session.commit()
    summary = advance_cascades(session, MONDAY_9H + timedelta(days=30), LINKS)
    session.commit()
    assert (summary.expired, summary.asked, summary.exhausted) == (0, 0, 0)
    session.refresh(request)
    assert request.cascade_state == "done" and request.status == Status.DOCTORS_CONTACTED
    assert _contacts(session) == [(nearest.id, ContactStatus.ACCEPTED)]


def test_cascade_command_runs_from_the_timer(
    runner: FlaskCliRunner,
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    _setup(session, make_territory, make_request, make_doctor)
    contact = session.scalars(select(DoctorContact)).one()
    contact.asked_at = utcnow() - timedelta(days=10)  # two working weeks without an answer
    session.commit()
    result = runner.invoke(args=["cascade"])
    assert result.exit_code == 0, result.output
    assert "1 unanswered, 1 doctors asked, 0 exhausted" in result.output


def test_the_cascade_passes_over_a_doctor_no_message_can_reach(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(territory, lat=50.688, lon=2.88)
    landline = make_doctor(territory, email="", phone="+33320820199", preferred_channel="sms",
                           lat=50.6881, lon=2.8801)  # fmt: skip
    reachable = make_doctor(territory, email="b@example.org", lat=50.70, lon=2.90)
    start_cascade(session, territory, request, links=LINKS, now=MONDAY_9H, user_id=None)  # type: ignore[arg-type]
    session.commit()
    assert _contacts(session) == [(reachable.id, ContactStatus.ASKED)]
    assert landline.id not in {doctor_id for doctor_id, _ in _contacts(session)}
    assert session.scalars(select(Message.recipient)).all() == ["b@example.org"]
