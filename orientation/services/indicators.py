"""Indicators of one CPTS (or several) over a period, for the ACI contract and the CPTS's board.

Every figure is a SQL aggregate: the page stays fast over a region's 100,000 requests because
no request row is loaded into Python. Delays use the nearest-rank percentile (the value at
rank ceil(p * n) in ascending order), computed with ORDER BY ... OFFSET.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Float,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    Accepting,
    Doctor,
    Person,
    Request,
    RequestEvent,
    Source,
    Status,
    SurveyAnswer,
    Territory,
    VolunteerStatus,
)
from orientation.services.overview import availability_cutoff

MAX_PERIOD_DAYS = 366 * 20  # a ten-year report must work; beyond twenty is surely a typo


class PeriodError(ValueError):
    """The period is empty, reversed or absurd; the message says which, in French."""


@dataclass(frozen=True)
class Period:
    """Whole days from `first` to `last` included, read as UTC days."""

    first: date
    last: date

    @classmethod
    def parse(cls, first: date | None, last: date | None) -> Period:
        if first is None or last is None:
            raise PeriodError("Indiquez une date de début et une date de fin.")
        if last < first:
            raise PeriodError("La date de fin doit suivre la date de début.")
        if (last - first).days > MAX_PERIOD_DAYS:
            raise PeriodError("La période ne peut dépasser vingt ans.")
        return cls(first, last)

    @classmethod
    def year(cls, year: int) -> Period:
        return cls(date(year, 1, 1), date(year, 12, 31))

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return self.start + timedelta(days=(self.last - self.first).days + 1)

    @property
    def label(self) -> str:
        return f"du {self.first:%d/%m/%Y} au {self.last:%d/%m/%Y}"


@dataclass(frozen=True)
class Delay:
    count: int
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True)
class PriorityShare:
    key: str
    label: str
    requests: int
    oriented: int


@dataclass(frozen=True)
class DoctorFigures:
    volunteers: int
    accepting_fresh: int
    confirmed_in_period: int
    places_left: int
    places_taken: int


@dataclass(frozen=True)
class SurveyFigures:
    answers: int
    found_gp: int
    satisfaction_mean: float | None
    by_score: dict[int, int]


@dataclass(frozen=True)
class Indicators:
    period: Period
    territories: list[str]
    requests: int
    persons: int
    by_source: dict[str, int]
    by_month: dict[str, int]
    eligible: int
    out_of_territory: int
    oriented: int
    closed: int
    open: int
    to_proposal: Delay
    to_orientation: Delay
    priority: list[PriorityShare]
    any_priority: int
    home_visits: int
    doctors: DoctorFigures
    referrers: int
    survey: SurveyFigures

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["period"] = {
            "first": self.period.first.isoformat(),
            "last": self.period.last.isoformat(),
        }
        return data

    def as_rows(self) -> list[tuple[str, object]]:
        """The same figures as (indicator, value) pairs, for the CSV download."""
        rows: list[tuple[str, object]] = [
            ("période", self.period.label),
            ("CPTS", ", ".join(self.territories)),
            ("demandes (foyers)", self.requests),
            ("personnes", self.persons),
        ]
        rows += [(f"demandes, source {k}", v) for k, v in self.by_source.items()]
        rows += [(f"demandes, mois {k}", v) for k, v in self.by_month.items()]
        rows += [
            ("éligibles", self.eligible),
            ("hors territoire", self.out_of_territory),
            ("orientées", self.oriented),
            ("clôturées ou retirées", self.closed),
            ("ouvertes", self.open),
            ("délai demande → proposition, médiane (jours)", _fmt(self.to_proposal.median_days)),
            ("délai demande → proposition, 90e centile (jours)", _fmt(self.to_proposal.p90_days)),
            ("délai demande → orientation, médiane (jours)", _fmt(self.to_orientation.median_days)),
            (
                "délai demande → orientation, 90e centile (jours)",
                _fmt(self.to_orientation.p90_days),
            ),
            ("demandes avec au moins un critère de priorité", self.any_priority),
        ]
        for share in self.priority:
            rows += [
                (f"{share.label}", share.requests),
                (f"{share.label}, orientées", share.oriented),
            ]
        rows += [
            ("besoin de visites à domicile", self.home_visits),
            ("médecins volontaires", self.doctors.volunteers),
            ("médecins acceptant, disponibilité à jour", self.doctors.accepting_fresh),
            ("médecins ayant confirmé sur la période", self.doctors.confirmed_in_period),
            ("places annoncées restantes", self.doctors.places_left),
            ("places prises (orientations vers un médecin)", self.doctors.places_taken),
            ("professionnels ayant adressé des patients", self.referrers),
            ("enquête : réponses", self.survey.answers),
            ("enquête : ont trouvé un médecin", self.survey.found_gp),
            ("enquête : satisfaction moyenne (1 à 5)", _fmt(self.survey.satisfaction_mean)),
        ]
        return rows


def _fmt(value: float | None) -> object:
    return "" if value is None else round(value, 1)


def _days_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[float]:
    if dialect == "sqlite":
        return cast(func.julianday(later) - func.julianday(earlier), Float)
    return cast(func.extract("epoch", later - earlier) / 86400.0, Float)


def _day_minus_years(dialect: str, instant: Any, years: int) -> ColumnElement[Any]:
    """The calendar day `years` before an instant (UTC), for ages at the date of the request."""
    if dialect == "sqlite":
        return func.date(instant, f"-{years} years")
    return cast(func.timezone("UTC", instant) - literal_column(f"interval '{years} years'"), Date)


def _month(dialect: str, instant: Any) -> ColumnElement[str]:
    if dialect == "sqlite":
        return func.strftime("%Y-%m", instant)
    return func.to_char(func.timezone("UTC", instant), "YYYY-MM")


def _nearest_rank(n: int, percent: int) -> int:
    """The rank ceil(percent/100 * n), in integers (no floating-point surprise)."""
    return max(1, (percent * n + 99) // 100)


def compute(
    session: Session,
    territories: Sequence[Territory],
    period: Period,
    now: datetime,
) -> Indicators:
    """All the figures for these territories over the period.

    The counts come from one pass over the period's requests, joined with one grouped pass
    over their persons and one over their status events (statuses ever reached, first
    proposal, first orientation); PostgreSQL computes the percentiles in that same pass
    (percentile_disc); on SQLite the events are read apart and the delays sorted in Python.
    Then one light pass grouped by source and month, and small queries on doctors and survey
    answers.
    """
    dialect = session.get_bind().dialect.name
    ids = [t.id for t in territories]
    in_period = [
        Request.territory_id.in_(ids),
        Request.created_at >= period.start,
        Request.created_at < period.end,
    ]
    oriented = Request.status == Status.ORIENTED

    def total(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    # Priority criteria per request, from its persons, ages taken at the date of the request.
    elderly = Person.birth_date <= _day_minus_years(dialect, Request.created_at, 70)
    child = Person.birth_date > _day_minus_years(dialect, Request.created_at, 6)
    per_request = (
        select(
            Person.request_id.label("rid"),
            func.count().label("n"),
            func.max(case((elderly, 1), else_=0)).label("elderly"),
            func.max(case((child, 1), else_=0)).label("child"),
            func.max(case((Person.ald.is_(True), 1), else_=0)).label("ald"),
        )
        .join(Request, Request.id == Person.request_id)
        .where(*in_period)
        .group_by(Person.request_id)
        .subquery()
    )
    events = _events_per_request(in_period)
    days = {
        status: _days_between(dialect, events.c[status.value], Request.created_at)
        for status in (Status.PROPOSED, Status.ORIENTED)
    }
    eligible = events.c.eligible == 1
    criteria = {
        "elderly": (per_request.c.elderly == 1, "70 ans et plus"),
        "child": (per_request.c.child == 1, "moins de 6 ans"),
        "ald": (per_request.c.ald == 1, "ALD"),
        "css_ame": (Request.css_ame.is_(True), "CSS/AME"),
    }
    any_priority = (
        (per_request.c.elderly == 1)
        | (per_request.c.child == 1)
        | (per_request.c.ald == 1)
        | Request.css_ame.is_(True)
    )
    columns = [
        func.count().label("requests"),
        func.coalesce(func.sum(per_request.c.n), 0).label("persons"),
        total(oriented).label("oriented"),
        total(Request.status.in_([Status.CLOSED, Status.WITHDRAWN])).label("closed"),
        total(Request.status.in_(OPEN_STATUSES)).label("open"),
        total(Request.need_home_visits.is_(True)).label("home"),
        total(any_priority).label("any_priority"),
        func.count(func.distinct(Request.referrer_id)).label("referrers"),
        total(and_(oriented, Request.oriented_doctor_id.is_not(None))).label("taken"),
    ]
    for key, (condition, _label) in criteria.items():
        columns += [total(condition).label(key), total(and_(condition, oriented)).label(f"{key}_o")]
    on_postgresql = dialect == "postgresql"
    if on_postgresql:
        columns += [
            total(eligible).label("eligible"),
            total(and_(events.c.out == 1, ~eligible)).label("out"),
        ]
        for status, value in days.items():
            columns.append(func.count(value).label(f"{status.value}_n"))
            for percent in (50, 90):  # ordered-set aggregates skip NULLs (never reached)
                ordered = func.percentile_disc(percent / 100).within_group(value)
                columns.append(ordered.label(f"{status.value}_{percent}"))
    query = (
        select(*columns)
        .select_from(Request)
        .outerjoin(per_request, per_request.c.rid == Request.id)
        .where(*in_period)
    )
    if on_postgresql:
        row = session.execute(query.outerjoin(events, events.c.rid == Request.id)).one()
        reached = Reached(
            int(row.eligible),
            int(row.out),
            {
                status: _delay(
                    int(getattr(row, f"{status.value}_n")),
                    *(getattr(row, f"{status.value}_{p}") for p in (50, 90)),
                )
                for status in days
            },
        )
    else:
        # SQLite has no percentile aggregate, and a second join to a materialised subquery
        # costs it more than reading these few columns of each request with events.
        row = session.execute(query).one()
        reached = _reached_from_rows(session, events, days, in_period)
    delays = reached.delays

    by_source = {source.value: 0 for source in Source}
    by_month: dict[str, int] = {}
    month = _month(dialect, Request.created_at)
    for source, month_key, count in session.execute(
        select(Request.source, month, func.count())
        .where(*in_period)
        .group_by(Request.source, month)
        .order_by(month)
    ):
        by_source[Source(source).value] += count
        by_month[month_key] = by_month.get(month_key, 0) + count

    return Indicators(
        period=period,
        territories=[t.name for t in territories],
        requests=row.requests,
        persons=int(row.persons),
        by_source=by_source,
        by_month=by_month,
        eligible=reached.eligible,
        out_of_territory=reached.out_of_territory,
        oriented=int(row.oriented),
        closed=int(row.closed),
        open=int(row.open),
        to_proposal=delays[Status.PROPOSED],
        to_orientation=delays[Status.ORIENTED],
        priority=[
            PriorityShare(key, label, int(getattr(row, key)), int(getattr(row, f"{key}_o")))
            for key, (_c, label) in criteria.items()
        ],
        any_priority=int(row.any_priority),
        home_visits=int(row.home),
        doctors=_doctors(session, territories, period, now, int(row.taken)),
        referrers=int(row.referrers),
        survey=_survey(session, ids, period),
    )


REACHED = [Status.ELIGIBLE, Status.OUT_OF_TERRITORY, Status.PROPOSED, Status.ORIENTED]


def _events_per_request(in_period: list[Any]) -> Any:
    """One row per request of the period that has events: the statuses it ever reached
    (eligible, out of territory) and when it first reached proposed and oriented (status
    events only). The events are read through ix_request_events_reached alone."""
    to = RequestEvent.to_status
    is_status = RequestEvent.kind == "status"

    def first(status: Status) -> Any:
        return func.min(case((and_(is_status, to == status.value), RequestEvent.at)))

    def ever(status: Status) -> Any:
        return func.max(case((to == status.value, 1), else_=0))

    return (
        select(
            RequestEvent.request_id.label("rid"),
            ever(Status.ELIGIBLE).label("eligible"),
            ever(Status.OUT_OF_TERRITORY).label("out"),
            first(Status.PROPOSED).label(Status.PROPOSED.value),
            first(Status.ORIENTED).label(Status.ORIENTED.value),
        )
        .join(Request, Request.id == RequestEvent.request_id)
        .where(*in_period, to.in_([s.value for s in REACHED]))
        .group_by(RequestEvent.request_id)
        .subquery()
    )


@dataclass(frozen=True)
class Reached:
    eligible: int
    out_of_territory: int
    delays: dict[Status, Delay]


def _delay(n: int, median: Any, p90: Any) -> Delay:
    return Delay(
        count=n,
        median_days=None if median is None else float(median),
        p90_days=None if p90 is None else float(p90),
    )


def _reached_from_rows(
    session: Session, events: Any, days: dict[Status, Any], in_period: list[Any]
) -> Reached:
    """Statuses reached and delays from one read of the grouped events: counted, and the
    delays sorted in Python for the nearest-rank percentiles."""
    rows = session.execute(
        select(events.c.eligible, events.c.out, *days.values())
        .select_from(Request)
        .join(events, events.c.rid == Request.id)
        .where(*in_period)
    ).all()
    eligible = sum(1 for row in rows if row[0] == 1)
    out = sum(1 for row in rows if row[1] == 1 and row[0] != 1)
    delays = {}
    for column, status in enumerate(days, start=2):
        values = sorted(row[column] for row in rows if row[column] is not None)
        n = len(values)
        if n == 0:
            delays[status] = _delay(0, None, None)
            continue
        median, p90 = (values[_nearest_rank(n, p) - 1] for p in (50, 90))
        delays[status] = _delay(n, median, p90)
    return Reached(eligible, out, delays)


def _doctors(
    session: Session, territories: Sequence[Territory], period: Period, now: datetime, taken: int
) -> DoctorFigures:
    volunteers = fresh = confirmed = places = 0
    # One query per territory: each has its own refresh interval (a handful of CPTS at most).
    for territory in territories:
        volunteer = (
            Doctor.territory_id == territory.id,
            Doctor.active.is_(True),
            Doctor.volunteer_status == VolunteerStatus.VOLUNTEER,
        )
        fresh_accepting = and_(
            Doctor.accepting == Accepting.YES,
            Doctor.confirmed_at >= availability_cutoff(territory, now),
        )
        in_period = and_(Doctor.confirmed_at >= period.start, Doctor.confirmed_at < period.end)
        row = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((fresh_accepting, 1), else_=0)), 0),
                func.coalesce(func.sum(case((in_period, 1), else_=0)), 0),
                func.coalesce(func.sum(case((fresh_accepting, Doctor.capacity_left), else_=0)), 0),
            ).where(*volunteer)
        ).one()
        volunteers += row[0]
        fresh += int(row[1])
        confirmed += int(row[2])
        places += int(row[3])
    return DoctorFigures(volunteers, fresh, confirmed, places, taken)


def _survey(session: Session, ids: list[int], period: Period) -> SurveyFigures:
    # Answers only know their year (anonymity): a period counts the years it touches.
    where = (
        SurveyAnswer.territory_id.in_(ids),
        SurveyAnswer.period >= period.first.year,
        SurveyAnswer.period <= period.last.year,
    )
    answers, found, mean = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((SurveyAnswer.found_gp.is_(True), 1), else_=0)), 0),
            func.avg(SurveyAnswer.satisfaction),
        ).where(*where)
    ).one()
    by_score = dict.fromkeys(range(1, 6), 0)
    for score, count in session.execute(
        select(SurveyAnswer.satisfaction, func.count())
        .where(*where)
        .group_by(SurveyAnswer.satisfaction)
    ):
        by_score[int(score)] = count
    return SurveyFigures(
        answers=answers,
        found_gp=int(found),
        satisfaction_mean=float(mean) if mean is not None else None,
        by_score=by_score,
    )
