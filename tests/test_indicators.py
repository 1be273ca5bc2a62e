"""Indicators: SQL aggregates checked against the same figures computed plainly from the rows."""

from __future__ import annotations

import csv
import io
import math
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from geo.geocoding import OfflineGeocoder
from models import Reason, Request, Role, Source, Status, SurveyAnswer, Territory, VolunteerStatus
from models.migrate import _alembic_config
from orientation.links import LinkSigner
from orientation.services.demo import seed_demo
from orientation.services.followup import FollowUpAnswer, answer_follow_up
from orientation.services.indicators import Period, compute
from orientation.services.intake import submit_request
from orientation.services.intake_validation import IntakeData, PersonData
from orientation.services.local_time import in_paris
from orientation.services.request_case import override_territory
from orientation.services.rights_erasure import anonymise_request
from orientation.services.workflow import change_status

NOW = datetime(2027, 1, 15, 12, tzinfo=UTC)
SIGNER = LinkSigner("test-secret-" + "x" * 40)
# Walks through the workflow after the request is made: a status, "override" (the territory
# check overridden by a coordinator) or "appointment" / "no appointment" (the patient's
# answer to the follow-up after a proposal).
Step = Status | str
AFTER_RECEIVED: list[list[Step]] = [
    [Status.ELIGIBLE],
    [Status.OUT_OF_TERRITORY],
    [Status.OUT_OF_TERRITORY, Status.ELIGIBLE, Status.IN_PROGRESS],
    [Status.ELIGIBLE, Status.DOCTORS_CONTACTED, Status.PROPOSED],
    [Status.ELIGIBLE, Status.IN_PROGRESS, Status.PROPOSED, Status.ORIENTED],
    [Status.ELIGIBLE, Status.PROPOSED, Status.IN_PROGRESS, Status.PROPOSED, Status.ORIENTED],
    [Status.ELIGIBLE, Status.CLOSED],
    [Status.WITHDRAWN],
    [],
]
AFTER_INTAKE: dict[Status, list[list[Step]]] = {
    Status.ELIGIBLE: [
        [],
        [Status.IN_PROGRESS],
        [Status.DOCTORS_CONTACTED, Status.PROPOSED],
        [Status.IN_PROGRESS, Status.PROPOSED, "appointment"],
        [Status.PROPOSED, "no appointment", Status.PROPOSED, Status.ORIENTED],
        [Status.PROPOSED, Status.IN_PROGRESS, Status.PROPOSED, "appointment"],
        [Status.CLOSED],
        [Status.WITHDRAWN],
    ],
    Status.OUT_OF_TERRITORY: [
        [],
        ["override"],
        ["override", Status.IN_PROGRESS, Status.PROPOSED, "appointment"],
        [Status.CLOSED],
    ],
}


def _intake(territory: Territory, session: Session, rng: random.Random, created: datetime,
            persons: list[tuple[date, bool]], **values: object) -> Request:  # fmt: skip
    """A request made by the real intake service (as the questionnaire and API make them)."""
    communes = gazetteer().by_insee
    insee = "59350" if rng.random() < 0.25 else rng.choice(territory.insee_codes)  # Lille: out
    data = IntakeData(
        persons=[PersonData("P", "Q", born, ald) for born, ald in persons],
        phone="+33612345678", email="", preferred_channel="sms", best_time="", street="",
        postal_code=communes[insee].postal_codes[0], commune=communes[insee],
        reason=Reason.GP_LEFT, reason_detail="", already_sees_gp=False,
        need_home_visits=bool(values["need_home_visits"]), need_reduced_mobility=False,
        need_chronic_followup=False, language="", css_ame=bool(values["css_ame"]),
        comment="", agrees_to_survey=True, source_tag="",
    )  # fmt: skip
    submitted = submit_request(
        session, territory, data, source=values["source"], now=created,  # type: ignore[arg-type]
        geocoder=OfflineGeocoder(), signer=SIGNER, base_url="http://localhost",
        referrer_id=values["referrer_id"],  # type: ignore[arg-type]
    )  # fmt: skip
    request = session.get(Request, submitted.request_id)
    assert request is not None
    return request


def _walk(session: Session, request: Request, steps: list[Step], at: datetime,
          rng: random.Random, coordinator: int) -> None:  # fmt: skip
    for step in steps:
        at += timedelta(days=rng.randint(0, 20), hours=rng.randint(0, 20))
        if step == "override":
            override_territory(request, "Déménage la semaine prochaine", now=at,
                               user_id=coordinator)  # fmt: skip
        elif step in ("appointment", "no appointment"):
            answer = FollowUpAnswer(got_appointment=step == "appointment", declared_doctor=True)
            answer_follow_up(session, request, answer, at)
        else:
            change_status(request, Status(step), now=at, actor_label="test")
        session.commit()


def _seed(territory, session, make_request, make_doctor, make_user, n=60):  # type: ignore[no-untyped-def]
    """Requests over 2025-2026 made by every writer: the intake service, the tests' factory
    (an ORM writer, as the demo), then the workflow, the territory override, the follow-up."""
    rng = random.Random(territory.id * 7)
    referrers = [make_user(territory, Role.REFERRER) for _ in range(3)]
    coordinator = make_user(territory, Role.COORDINATOR).id
    for i in range(n):
        created = datetime(2025, 11, 1, tzinfo=UTC) + timedelta(
            days=rng.randint(0, 440), hours=rng.randint(0, 23), minutes=rng.randint(0, 59)
        )
        persons = [
            (date(rng.choice([1940, 1955, 1956, 1980, 2021, 2024, 2010]), rng.randint(1, 12),
                  rng.randint(1, 28)) if rng.random() > 0.1 else None,
             rng.random() < 0.15)
            for _ in range(rng.randint(1, 3))
        ]  # fmt: skip
        values = {
            "source": rng.choice(list(Source)),
            "css_ame": rng.random() < 0.2,
            "need_home_visits": rng.random() < 0.15,
            "referrer_id": rng.choice([None, None, *[u.id for u in referrers]]),
        }
        if i % 3 and all(born is not None for born, _ald in persons):
            request = _intake(territory, session, rng, created, persons, **values)  # type: ignore[arg-type]
            steps = rng.choice(AFTER_INTAKE[Status(request.status)])
        else:  # the factory also makes persons without a birth date (a phone call, say)
            request = make_request(
                territory, status=Status.RECEIVED, created_at=created,
                persons=[("P", "Q", born, ald) for born, ald in persons], **values,
            )  # fmt: skip
            steps = rng.choice(AFTER_RECEIVED)
        _walk(session, request, steps, created, rng, coordinator)
        if request.status is Status.ORIENTED and rng.random() < 0.7:
            request.oriented_doctor_id = make_doctor(territory).id
        session.commit()
    make_doctor(territory, confirmed_at=NOW - timedelta(days=400), capacity_left=5)  # stale
    make_doctor(territory, volunteer_status=VolunteerStatus.NOT_YET)
    make_doctor(territory, accepting="no", confirmed_at=datetime(2026, 3, 1, tzinfo=UTC))
    for score in (5, 4, 4, 2):
        session.add(SurveyAnswer(territory_id=territory.id, period=2026, found_gp=score > 3,
                                 satisfaction=score, comment=""))  # fmt: skip
    session.add(SurveyAnswer(territory_id=territory.id, period=2025, found_gp=True,
                             satisfaction=1, comment=""))  # fmt: skip
    session.commit()


def _age(birth: date, day: date) -> int:
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def _nearest_rank(values: list[float], p: float) -> float | None:
    if not values:
        return None
    return sorted(values)[max(1, math.ceil(p * len(values))) - 1]


def _ever(r: Request, status: Status) -> bool:
    return any(e.to_status == status.value for e in r.events)


def _first(r: Request, status: Status) -> datetime | None:
    times = [e.at for e in r.events if e.kind == "status" and e.to_status == status.value]
    return min(times) if times else None


def _criteria(r: Request) -> dict[str, bool]:
    """The priority criteria from the persons, ages at the date of the request."""
    day = r.created_at.date()
    ages = [_age(p.birth_date, day) for p in r.persons if p.birth_date]
    return {
        "elderly": any(a >= 70 for a in ages),
        "child": any(a < 6 for a in ages),
        "ald": any(p.ald for p in r.persons),
        "css_ame": r.css_ame,
    }


def _raw(r: Request) -> dict[str, object]:
    """What the stored report columns of a request must say, from its persons and events."""
    criteria = _criteria(r)
    return {
        "persons_count": len(r.persons),
        "has_elderly": criteria["elderly"],
        "has_child": criteria["child"],
        "has_ald": criteria["ald"],
        "reached_eligible": _ever(r, Status.ELIGIBLE),
        "reached_out_of_territory": _ever(r, Status.OUT_OF_TERRITORY),
        "first_proposed_at": _first(r, Status.PROPOSED),
        "oriented_at": _first(r, Status.ORIENTED),
    }


def _expected(session: Session, territories: list[Territory], period: Period) -> dict:  # type: ignore[type-arg]
    """The indicators computed plainly from the persons and events, not the stored columns."""
    ids = {t.id for t in territories}
    requests = [
        r
        for r in session.scalars(select(Request)).all()
        if r.territory_id in ids and period.start <= r.created_at < period.end
    ]
    ever, crit = _ever, _criteria

    def delays(status: Status) -> list[float]:
        return [
            (first - r.created_at).total_seconds() / 86400
            for r in requests
            if (first := _first(r, status)) is not None
        ]

    months: dict[str, int] = {}
    for r in requests:
        key = in_paris(r.created_at).strftime("%Y-%m")  # Paris months, as the pages say
        months[key] = months.get(key, 0) + 1
    oriented = [r for r in requests if r.status is Status.ORIENTED]
    return {
        "requests": len(requests),
        "persons": sum(len(r.persons) for r in requests),
        "by_source": {s.value: sum(r.source is s for r in requests) for s in Source},
        "by_month": dict(sorted(months.items())),
        "eligible": sum(ever(r, Status.ELIGIBLE) for r in requests),
        "out": sum(
            ever(r, Status.OUT_OF_TERRITORY) and not ever(r, Status.ELIGIBLE) for r in requests
        ),
        "oriented": len(oriented),
        "closed": sum(r.status in (Status.CLOSED, Status.WITHDRAWN) for r in requests),
        "open": sum(
            r.status not in (Status.CLOSED, Status.WITHDRAWN, Status.ORIENTED) for r in requests
        ),
        "proposal": delays(Status.PROPOSED),
        "orientation": delays(Status.ORIENTED),
        "priority": {
            key: (
                sum(crit(r)[key] for r in requests),
                sum(crit(r)[key] for r in oriented),
            )
            for key in ("elderly", "child", "ald", "css_ame")
        },
        "any_priority": sum(any(crit(r).values()) for r in requests),
        "home": sum(r.need_home_visits for r in requests),
        "referrers": len({r.referrer_id for r in requests if r.referrer_id is not None}),
        "taken": sum(r.oriented_doctor_id is not None for r in oriented),
    }


@pytest.fixture
def seeded(session, make_territory, make_request, make_doctor, make_user):  # type: ignore[no-untyped-def]
    territory = make_territory()
    _seed(territory, session, make_request, make_doctor, make_user)
    return territory


def test_indicators_match_figures_computed_from_the_raw_rows(seeded, session):  # type: ignore[no-untyped-def]
    period = Period(date(2026, 1, 1), date(2026, 12, 31))
    figures = compute(session, [seeded], period, NOW)
    expected = _expected(session, [seeded], period)
    assert expected["requests"] > 20  # the seed does cover the period
    assert figures.requests == expected["requests"]
    assert figures.persons == expected["persons"]
    assert figures.by_source == expected["by_source"]
    assert figures.by_month == expected["by_month"]
    assert (figures.eligible, figures.out_of_territory) == (expected["eligible"], expected["out"])
    assert (figures.oriented, figures.closed, figures.open) == (
        expected["oriented"], expected["closed"], expected["open"],
    )  # fmt: skip
    for delay, values in ((figures.to_proposal, expected["proposal"]),
                          (figures.to_orientation, expected["orientation"])):  # fmt: skip
        assert delay.count == len(values) > 0
        assert delay.median_days == pytest.approx(_nearest_rank(values, 0.5), abs=1e-3)
        assert delay.p90_days == pytest.approx(_nearest_rank(values, 0.9), abs=1e-3)
    assert {s.key: (s.requests, s.oriented) for s in figures.priority} == expected["priority"]
    assert figures.any_priority == expected["any_priority"]
    assert figures.home_visits == expected["home"]
    assert figures.referrers == expected["referrers"]
    assert figures.doctors.places_taken == expected["taken"]
    # Doctors: the oriented-to doctors (fresh, 3 places each) plus the three odd ones.
    fresh = expected["taken"] + sum(
        1 for r in session.scalars(select(Request)) if r.oriented_doctor_id and
        not (period.start <= r.created_at < period.end)
    )  # fmt: skip
    assert figures.doctors.volunteers == fresh + 2
    assert figures.doctors.accepting_fresh == fresh
    assert figures.doctors.places_left == 3 * fresh
    assert figures.survey.answers == 4
    assert figures.survey.found_gp == 3
    assert figures.survey.satisfaction_mean == pytest.approx(3.75)
    assert figures.survey.by_score == {1: 0, 2: 1, 3: 0, 4: 2, 5: 1}


def test_a_period_that_cuts_months_counts_only_its_own_days(seeded, session):  # type: ignore[no-untyped-def]
    period = Period(date(2025, 12, 15), date(2026, 2, 10))
    figures = compute(session, [seeded], period, NOW)
    expected = _expected(session, [seeded], period)
    assert list(figures.by_month) == ["2025-12", "2026-01", "2026-02"]
    assert figures.by_month == expected["by_month"]
    assert figures.requests == expected["requests"] == sum(figures.by_month.values())


def test_every_writer_stores_on_the_request_what_its_persons_and_events_say(seeded, session):  # type: ignore[no-untyped-def]
    seed_demo(session, gazetteer(), NOW)
    requests = session.scalars(select(Request).order_by(Request.id)).all()
    assert len(requests) > 60
    by_intake = {(r.is_demo, any(e.kind == "submitted" for e in r.events)) for r in requests}
    assert by_intake == {(False, False), (False, True), (True, False)}  # factory, intake, demo
    for r in requests:
        stored = {name: getattr(r, name) for name in _raw(r)}
        assert stored == _raw(r), f"request {r.id}"
        assert r.is_priority == any(_criteria(r).values()), f"request {r.id}"


def test_anonymising_requests_changes_no_indicator(seeded, session):  # type: ignore[no-untyped-def]
    period = Period(date(2025, 1, 1), date(2026, 12, 31))
    before = compute(session, [seeded], period, NOW)
    for request in session.scalars(select(Request)).all():
        anonymise_request(session, request, NOW, reason="test")  # birth dates become 1 January
    session.commit()
    assert compute(session, [seeded], period, NOW) == before


def test_an_admin_sees_the_sum_over_every_cpts_and_a_coordinator_only_theirs(
    seeded, session, make_territory, make_request, make_doctor, make_user, client, auth
):  # type: ignore[no-untyped-def]
    other = make_territory()
    _seed(other, session, make_request, make_doctor, make_user, n=15)
    query = {"du": "2026-01-01", "au": "2026-12-31"}
    expected_all = _expected(session, [seeded, other], Period.year(2026))
    expected_one = _expected(session, [seeded], Period.year(2026))

    auth.login(make_user(None, Role.ADMIN))
    data = client.get("/espace/indicateurs.json", query_string=query).get_json()
    assert data["requests"] == expected_all["requests"]
    assert data["survey"]["answers"] == 8
    one = client.get("/espace/indicateurs.json", query_string={**query, "cpts": seeded.id})
    assert one.get_json()["requests"] == expected_one["requests"]
    auth.logout()

    auth.login(make_user(seeded, Role.COORDINATOR))
    data = client.get("/espace/indicateurs.json", query_string={**query, "cpts": other.id})
    assert data.get_json()["requests"] == expected_one["requests"]


def test_the_page_the_csv_and_the_json_give_the_same_figures(
    seeded, session, client, auth, make_user
):  # type: ignore[no-untyped-def]
    auth.login(make_user(seeded, Role.COORDINATOR))
    query = {"du": "2026-01-01", "au": "2026-12-31"}
    data = client.get("/espace/indicateurs.json", query_string=query).get_json()
    text = client.get("/espace/indicateurs.csv", query_string=query).data.decode("utf-8-sig")
    rows = dict(csv.reader(io.StringIO(text), delimiter=";"))
    assert rows["demandes (foyers)"] == str(data["requests"])
    assert rows["orientées"] == str(data["oriented"])
    assert rows["70 ans et plus"] == str(data["priority"][0]["requests"])
    page = client.get("/espace/indicateurs", query_string=query)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"<strong>{data['requests']}</strong> foyers" in html
    assert "<svg" in html and 'role="img"' in html
    assert "style=" not in html  # the CSP forbids inline styles
    # Decimals with a comma, on the page and in the CSV a French spreadsheet reads.
    assert rows["enquête : satisfaction moyenne (1 à 5)"] == "3,8"
    assert "Satisfaction moyenne : 3,8 sur 5." in html


def test_an_empty_period_is_refused_with_a_clear_message(seeded, client, auth, make_user):  # type: ignore[no-untyped-def]
    auth.login(make_user(seeded, Role.COORDINATOR))
    page = client.get("/espace/indicateurs", query_string={"du": "", "au": ""})
    assert page.status_code == 400
    assert "Indiquez une date de début et une date de fin." in page.get_data(as_text=True)
    reversed_ = client.get(
        "/espace/indicateurs.json", query_string={"du": "2026-05-01", "au": "2026-01-01"}
    )
    assert reversed_.status_code == 400
    assert "La date de fin doit suivre la date de début." in str(reversed_.get_json())


def test_a_ten_year_period_is_accepted_and_a_period_without_requests_says_so(
    seeded, session, client, auth, make_user
):  # type: ignore[no-untyped-def]
    auth.login(make_user(seeded, Role.COORDINATOR))
    ten = client.get(
        "/espace/indicateurs.json", query_string={"du": "2017-01-01", "au": "2026-12-31"}
    )
    assert ten.status_code == 200
    assert (
        ten.get_json()["requests"]
        == _expected(session, [seeded], Period(date(2017, 1, 1), date(2026, 12, 31)))["requests"]
    )
    page = client.get("/espace/indicateurs", query_string={"du": "2010-01-01", "au": "2010-12-31"})
    assert "Aucune demande sur cette période." in page.get_data(as_text=True)


def test_the_migration_fills_the_stored_columns_from_the_persons_and_events(seeded, session, app):  # type: ignore[no-untyped-def]
    def stored() -> list[tuple[object, ...]]:
        return [
            (r.id, r.is_priority, *(getattr(r, name) for name in _raw(r)))
            for r in session.scalars(select(Request).order_by(Request.id))
        ]

    def answers() -> list[tuple[object, ...]]:
        rows = session.execute(select(SurveyAnswer.period, SurveyAnswer.satisfaction)).all()
        return sorted(tuple(row) for row in rows)

    before, answers_before = stored(), answers()
    assert any(row[-1] is not None for row in before)  # some oriented, with a time
    session.close()
    config = _alembic_config()
    with app.extensions["orientation.engine"].begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")  # the columns and the random keys go
        command.upgrade(config, "head")  # and are made again from the persons and events
    assert stored() == before
    assert answers() == answers_before
    assert all(len(key) == 32 for key in session.scalars(select(SurveyAnswer.key)))


def test_a_request_just_after_paris_midnight_counts_in_the_paris_month(
    session, make_territory, make_request
):  # type: ignore[no-untyped-def]
    territory = make_territory()
    make_request(territory, created_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC))  # 1 Dec, 00:30
    make_request(territory, created_at=datetime(2026, 11, 30, 22, 30, tzinfo=UTC))  # 30 Nov, 23:30
    december = compute(session, [territory], Period(date(2026, 12, 1), date(2026, 12, 31)), NOW)
    november = compute(session, [territory], Period(date(2026, 11, 1), date(2026, 11, 30)), NOW)
    autumn = compute(session, [territory], Period(date(2026, 11, 15), date(2026, 12, 15)), NOW)
    assert (december.requests, december.by_month) == (1, {"2026-12": 1})
    assert (november.requests, november.by_month) == (1, {"2026-11": 1})
    assert autumn.by_month == {"2026-11": 1, "2026-12": 1}


def test_a_period_starts_and_ends_at_paris_midnight_in_winter_and_in_summer() -> None:
    assert Period(date(2026, 1, 1), date(2026, 7, 31)).start == datetime(
        2025, 12, 31, 23, tzinfo=UTC
    )
    assert Period(date(2026, 1, 1), date(2026, 7, 31)).end == datetime(2026, 7, 31, 22, tzinfo=UTC)
