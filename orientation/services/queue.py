"""The coordinator's queue: open requests, priority first then oldest, filtered, paginated.

Pagination is by keyset (priority, created_at, id), never OFFSET, so page 200 costs what page 1
costs. The order is read from the index `ix_requests_queue` (territory, status, is_priority,
created_at): one short index range per (open status, priority) pair, each LIMITed, merged in
SQL. A single `status IN (...) ORDER BY is_priority DESC, created_at` cannot be read from that
index in order (mixed directions, several statuses) and would sort every open request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, true, union_all
from sqlalchemy.orm import Session, selectinload

from models import OPEN_STATUSES, Request, Source, Status

PAGE_SIZE = 50
# Display and merge order of the open statuses.
QUEUE_STATUSES = (
    Status.RECEIVED,
    Status.ELIGIBLE,
    Status.OUT_OF_TERRITORY,
    Status.IN_PROGRESS,
    Status.DOCTORS_CONTACTED,
    Status.PROPOSED,
)
NEEDS = {
    "home_visits": Request.need_home_visits,
    "reduced_mobility": Request.need_reduced_mobility,
    "chronic": Request.need_chronic_followup,
}


@dataclass(frozen=True)
class QueueFilters:
    """What the coordinator narrowed the queue to; empty values mean 'any'."""

    status: Status | None = None
    source: Source | None = None
    priority_only: bool = False
    need: str = ""  # a key of NEEDS
    commune_insee: str = ""
    alert_only: bool = False  # cascades exhausted: the coordinator must take over


@dataclass(frozen=True)
class Cursor:
    """Where the previous page stopped: the last row's sort key."""

    is_priority: bool
    created_at: datetime
    id: int

    def encode(self) -> str:
        micros = int(self.created_at.timestamp() * 1_000_000)
        return f"{int(self.is_priority)}.{micros}.{self.id}"

    @classmethod
    def decode(cls, text: str) -> Cursor | None:
        """The cursor of a page link, or None for a malformed one (back to the first page)."""
        parts = text.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts) or parts[0] not in ("0", "1"):
            return None
        created = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(parts[1]))
        return cls(parts[0] == "1", created, int(parts[2]))


@dataclass(frozen=True)
class QueueRow:
    request: Request
    waiting: timedelta


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    counts: dict[Status, int] = field(default_factory=dict)
    alerts: int = 0


def _filter_terms(filters: QueueFilters) -> list[ColumnElement[bool]]:
    terms: list[ColumnElement[bool]] = []
    if filters.source is not None:
        terms.append(Request.source == filters.source)
    if filters.need in NEEDS:
        terms.append(NEEDS[filters.need].is_(True))
    if filters.commune_insee:
        terms.append(Request.commune_insee == filters.commune_insee)
    if filters.alert_only:
        terms.append(Request.cascade_state == "exhausted")
    return terms


def _after(cursor: Cursor | None, priority: bool) -> ColumnElement[bool] | None:
    """The keyset condition inside one priority branch; None when the branch is all done."""
    if cursor is None or cursor.is_priority and not priority:
        return true()
    if not cursor.is_priority and priority:
        return None  # priority rows all came before the cursor
    return or_(
        Request.created_at > cursor.created_at,
        and_(Request.created_at == cursor.created_at, Request.id > cursor.id),
    )


def queue_page(
    session: Session,
    territory_id: int,
    now: datetime,
    filters: QueueFilters | None = None,
    after: Cursor | None = None,
    limit: int = PAGE_SIZE,
) -> QueuePage:
    """One page of the queue of a territory, with counts per open status."""
    filters = filters or QueueFilters()
    statuses = [filters.status] if filters.status in OPEN_STATUSES else list(QUEUE_STATUSES)
    priorities = [True] if filters.priority_only else [True, False]
    extra = _filter_terms(filters)
    branches = []
    for priority in priorities:
        keyset = _after(after, priority)
        if keyset is None:
            continue
        for status in statuses:
            branches.append(
                select(Request.id, Request.is_priority, Request.created_at)
                .where(
                    Request.territory_id == territory_id,
                    Request.status == status,
                    # `= true`, not `IS true`: PostgreSQL uses an index only for `=`.
                    Request.is_priority == priority,
                    keyset,
                    *extra,
                )
                .order_by(Request.created_at, Request.id)
                .limit(limit + 1)
                .subquery()
                .select()
            )
    ids: list[int] = []
    if branches:
        merged = union_all(*branches).subquery()
        ids = list(
            session.scalars(
                select(merged.c.id)
                .order_by(merged.c.is_priority.desc(), merged.c.created_at, merged.c.id)
                .limit(limit + 1)
            )
        )
    has_more = len(ids) > limit
    ids = ids[:limit]
    loaded = {
        r.id: r
        for r in session.scalars(
            select(Request).where(Request.id.in_(ids)).options(selectinload(Request.persons))
        )
    }
    requests = [loaded[i] for i in ids if i in loaded]
    last = requests[-1] if requests else None
    next_cursor = (
        Cursor(last.is_priority, last.created_at, last.id).encode()
        if has_more and last is not None
        else None
    )
    return QueuePage(
        rows=[QueueRow(r, now - r.created_at) for r in requests],
        next_cursor=next_cursor,
        counts=status_counts(session, territory_id),
        alerts=alert_count(session, territory_id),
    )


def status_counts(session: Session, territory_id: int) -> dict[Status, int]:
    """Open requests per status (read from the queue index alone)."""
    counts = {status: 0 for status in QUEUE_STATUSES}
    rows = session.execute(
        select(Request.status, func.count())
        .where(Request.territory_id == territory_id, Request.status.in_(QUEUE_STATUSES))
        .group_by(Request.status)
    )
    for status, count in rows:
        counts[Status(status)] = count
    return counts


def alert_count(session: Session, territory_id: int) -> int:
    """Open requests whose cascade ran out of doctors."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Request)
            .where(
                Request.territory_id == territory_id,
                Request.status.in_(QUEUE_STATUSES),
                Request.cascade_state == "exhausted",
            )
        )
        or 0
    )


def waiting_label(waiting: timedelta) -> str:
    """'3 j 4 h', '5 h', '12 min': how long the household has been waiting."""
    minutes = max(int(waiting.total_seconds() // 60), 0)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} j {hours} h"
    if hours:
        return f"{hours} h"
    return f"{mins} min"
