"""Indicators of one CPTS (or several) over a period, for the ACI contract and the CPTS's board.

Every figure is a SQL aggregate over columns stored on the requests when they are written, read
from one covering index: the page stays fast over a region's 100,000 requests because no
request row is loaded into Python and no person or event is grouped. Delays use the
nearest-rank percentile (the value at rank ceil(p * n) in ascending order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.orm import Session

from models import (
    OPEN_STATUSES,
    Accepting,
    Doctor,
    Request,
    Source,
    Status,
    SurveyAnswer,
    Territory,
    VolunteerStatus,
)
from models.base import UTCDateTime
from orientation.services.local_time import paris_midnight
from orientation.services.overview import availability_cutoff
from orientation.services.sql_hints import unindexed_on_sqlite

MAX_PERIOD_DAYS = 366 * 20  # a ten-year report must work; beyond twenty is surely a typo


class PeriodError(ValueError):
    """The period is empty, reversed or absurd; the message says which, in French."""


@dataclass(frozen=True)
class Period:
    """Whole days from `first` to `last` included, as Paris's clocks count them: from Paris
    midnight at the start of `first` to Paris midnight at the end of `last` (in UTC)."""

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
        return paris_midnight(self.first)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return paris_midnight(self.last + timedelta(days=1))

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
    # A decimal comma: the CSV is read by a French spreadsheet (";" separates the columns),
    # which takes "0.8" for a date or a text.
    return "" if value is None else f"{value:.1f}".replace(".", ",")


def _days_between(dialect: str, later: Any, earlier: Any) -> ColumnElement[float]:
    # Plain floats from the driver: no result type to process for every row.
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return cast(func.extract("epoch", later - earlier) / 86400.0, DOUBLE_PRECISION)


def _nearest_rank(n: int, percent: int) -> int:
    """The rank ceil(percent/100 * n), in integers (no floating-point surprise)."""
    return max(1, (percent * n + 99) // 100)


CRITERIA = {
    "elderly": (Request.has_elderly, "70 ans et plus"),
    "child": (Request.has_child, "moins de 6 ans"),
    "ald": (Request.has_ald, "ALD"),
    "css_ame": (Request.css_ame, "CSS/AME"),
}
# Grouped by all of these at once: a few hundred groups, read in the order of
# ix_requests_figures, each adding its count to the figures its flags say.
GROUPS = (
    Request.status, Request.source, *(column for column, _label in CRITERIA.values()),
    Request.need_home_visits, Request.reached_eligible, Request.reached_out_of_territory,
)  # fmt: skip

# Planner settings for the grouped count on PostgreSQL (see compute), local to the transaction.
_GROUPS_IN_INDEX_ORDER = select(
    func.set_config("enable_hashagg", "off", True),
    func.set_config("max_parallel_workers_per_gather", "0", True),
)
_PLANNER_DEFAULTS = (text("RESET enable_hashagg"), text("RESET max_parallel_workers_per_gather"))


def compute(
    session: Session,
    territories: Sequence[Territory],
    period: Period,
    now: datetime,
) -> Indicators:
    """All the figures for these territories over the period.

    Every figure of a request is a column of it, kept right by the services that write it
    (services/household.py, workflow.change_status), and read from two covering indexes: one
    pass counts requests grouped by status, source and flags (ix_requests_figures); one
    counts the months, one reads the delays and one counts the referring professionals
    (ix_requests_reports). Then small queries on doctors and survey answers.
    """
    dialect = session.get_bind().dialect.name
    ids = [t.id for t in territories]
    in_period = (
        Request.territory_id.in_(ids),
        Request.created_at >= period.start,
        Request.created_at < period.end,
    )
    created: Any = Request.created_at
    if dialect == "sqlite":
        # A unary plus keeps SQLite from seeking the dates in ix_requests_reports, then
        # fetching and sorting every row to group them (fifteen times slower): it reads
        # ix_requests_figures in group order instead. PostgreSQL hashes the groups anyway.
        created = unindexed_on_sqlite(created)
    counts = dict.fromkeys(["requests", "persons", "eligible", "out", "any", "home", "taken"], 0)
    priority = {key: [0, 0] for key in CRITERIA}  # requests, oriented among them
    by_status = dict.fromkeys(Status, 0)
    by_source = {source.value: 0 for source in Source}
    rows: list[Any] = []
    if dialect == "postgresql":
        # Left to itself, PostgreSQL hashes every request of the period into groups (a
        # parallel sequential scan: 120-150 ms over 100,000 requests); reading the groups
        # in the order of ix_requests_figures, index-only, takes a third of that. These
        # settings last until the end of this statement's transaction, and are reset below.
        session.execute(_GROUPS_IN_INDEX_ORDER)
    for territory_id in ids:  # one territory at a time: the groups come in index order
        rows += session.execute(
            select(*GROUPS, func.count(), func.sum(Request.persons_count),
                   func.count(Request.oriented_doctor_id))
            .where(Request.territory_id == territory_id, created >= period.start,
                   created < period.end)
            .group_by(*GROUPS)
        ).all()  # fmt: skip
    if dialect == "postgresql":
        for reset in _PLANNER_DEFAULTS:
            session.execute(reset)
    for row in rows:
        status, source, *flags, home, eligible, out, n, persons, doctors = row
        status = Status(status)
        counts["requests"] += n
        counts["persons"] += persons or 0
        by_status[status] += n
        by_source[Source(source).value] += n
        counts["eligible"] += n if eligible else 0
        counts["out"] += n if out and not eligible else 0
        counts["home"] += n if home else 0
        counts["any"] += n if any(flags) else 0
        for key, flag in zip(CRITERIA, flags, strict=True):
            if flag:
                priority[key][0] += n
                priority[key][1] += n if status is Status.ORIENTED else 0
        if status is Status.ORIENTED:
            counts["taken"] += doctors  # oriented to a doctor of the registry

    # `referrer_id IS NOT NULL` changes no count (DISTINCT leaves NULL out) but lets PostgreSQL
    # read the partial ix_requests_referrers alone instead of the whole table (migration 0012).
    referrers = session.scalar(
        select(func.count(func.distinct(Request.referrer_id))).where(
            *in_period, Request.referrer_id.is_not(None)
        )
    )
    delays = _delays(session, dialect, in_period)
    return Indicators(
        period=period,
        territories=[t.name for t in territories],
        requests=counts["requests"],
        persons=counts["persons"],
        by_source=by_source,
        by_month=_by_month(session, ids, period),
        eligible=counts["eligible"],
        out_of_territory=counts["out"],
        oriented=by_status[Status.ORIENTED],
        closed=by_status[Status.CLOSED] + by_status[Status.WITHDRAWN],
        open=sum(by_status[status] for status in OPEN_STATUSES),
        to_proposal=delays[Status.PROPOSED],
        to_orientation=delays[Status.ORIENTED],
        priority=[
            PriorityShare(key, label, *priority[key]) for key, (_c, label) in CRITERIA.items()
        ],
        any_priority=counts["any"],
        home_visits=counts["home"],
        doctors=_doctors(session, territories, period, now, counts["taken"]),
        referrers=referrers or 0,
        survey=_survey(session, ids, period),
    )


def _months(period: Period) -> list[tuple[str, datetime, datetime]]:
    """Each calendar month of Paris the period touches: "YYYY-MM", and its part of the period
    (UTC instants)."""
    months = []
    month = period.first.replace(day=1)
    while month <= period.last:
        following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        start = max(paris_midnight(month), period.start)
        months.append((f"{month:%Y-%m}", start, min(paris_midnight(following), period.end)))
        month = following
    return months


@lru_cache(maxsize=32)
def _month_counts(months: int) -> Select[Any]:
    """One statement that counts the requests in each of `months` date ranges, each a short
    range of ix_requests_reports (no date function over every row, no sorting them); built
    once per number of months, the ranges and territories bound when it runs."""
    territories: Any = bindparam("territories", expanding=True)
    return select(
        *(
            select(func.count())
            .where(
                Request.territory_id.in_(territories),
                Request.created_at >= bindparam(f"first_{i}", type_=UTCDateTime()),
                Request.created_at < bindparam(f"next_{i}", type_=UTCDateTime()),
            )
            .scalar_subquery()
            for i in range(months)
        )
    )


def _by_month(session: Session, ids: list[int], period: Period) -> dict[str, int]:
    """Requests per month, for the months that have any."""
    months = _months(period)
    parameters: dict[str, Any] = {"territories": ids}
    for i, (_month, first, following) in enumerate(months):
        parameters |= {f"first_{i}": first, f"next_{i}": following}
    counts = session.connection().execute(_month_counts(len(months)), parameters).one()
    return {month: n for (month, _f, _n), n in zip(months, counts, strict=True) if n}


def _delay(values: list[float]) -> Delay:
    if not values:
        return Delay(count=0, median_days=None, p90_days=None)
    values.sort()
    median, p90 = (float(values[_nearest_rank(len(values), p) - 1]) for p in (50, 90))
    return Delay(count=len(values), median_days=median, p90_days=p90)


def _delays(session: Session, dialect: str, in_period: tuple[Any, ...]) -> dict[Status, Delay]:
    """Days from the request to its first proposal and to its orientation: how many, the
    median and the 90th percentile (nearest rank; requests that never got there are left
    out). The few tens of thousands of delays are sorted in Python: SQLite has no percentile
    aggregate, and PostgreSQL's percentile_disc took longer than reading them."""
    # The very condition of the partial ix_requests_delays (migration 0012), which PostgreSQL
    # then reads index-only: a third of the rows, instead of the table over a long period.
    reached = or_(Request.first_proposed_at.is_not(None), Request.oriented_at.is_not(None))
    query = select(
        _days_between(dialect, Request.first_proposed_at, Request.created_at),
        _days_between(dialect, Request.oriented_at, Request.created_at),
    ).where(*in_period, reached)
    # The driver's own tuples of floats: tens of thousands of result rows built for nothing
    # would cost more than the query.
    rows = session.connection().execute(query).cursor.fetchall()
    proposal = [row[0] for row in rows if row[0] is not None]
    orientation = [row[1] for row in rows if row[1] is not None]
    return {Status.PROPOSED: _delay(proposal), Status.ORIENTED: _delay(orientation)}


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


@dataclass(frozen=True)
class SurveyComment:
    """A free comment of the survey, as anonymous as its answer: the text and the year surveyed
    (an answer keeps no date, request or person: see models.survey)."""

    year: int
    text: str


def survey_comments(session: Session, territory_id: int, period: Period) -> list[SurveyComment]:
    """The non-empty comments of one CPTS's survey answers for the years the period touches
    (as _survey counts them), by year, in key order: the key is random, so the order says
    nothing of when they came."""
    rows = session.execute(
        select(SurveyAnswer.period, SurveyAnswer.comment)
        .where(
            SurveyAnswer.territory_id == territory_id,
            SurveyAnswer.period >= period.first.year,
            SurveyAnswer.period <= period.last.year,
            SurveyAnswer.comment != "",
        )
        .order_by(SurveyAnswer.period, SurveyAnswer.key)
    )
    return [SurveyComment(int(year), text) for year, text in rows if text.strip()]
