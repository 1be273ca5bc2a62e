"""The coordinator's queue: open requests, priority first then oldest, filtered, paginated.

Pagination is by keyset (priority, created_at, id), never OFFSET, so page 200 costs what page 1
costs. The order is read from the index `ix_requests_queue` (territory, status, is_priority,
created_at): one short index range per (open status, priority) pair, each LIMITed, merged in
SQL. A single `status IN (...) ORDER BY is_priority DESC, created_at` cannot be read from that
index in order (mixed directions, several statuses) and would sort every open request.

The page costs three round trips whatever the queue's size: the merged list with its columns
(no ORM objects: nothing here is changed), the persons' names, and every count in one
UNION ALL of index-only counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    func,
    literal,
    or_,
    select,
    true,
    type_coerce,
    union_all,
)
from sqlalchemy.orm import Session

from models import Person, Request, Source, Status
from models.request import FOLLOW_UP_FLAGGED, IN_CASCADE

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
# A follow-up answer can leave a request oriented (appointment made) yet flagged (no
# declaration of médecin traitant yet): the coordinator still has to call back.
FOLLOW_UP_STATUSES = (*QUEUE_STATUSES, Status.ORIENTED)
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
    follow_up_only: bool = False  # flagged by the follow-up (services/followup.py)


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
class QueueItem:
    """What a queue row shows of a request (read-only, not an ORM object)."""

    id: int
    reference: str
    status: Status
    source: Source
    postal_code: str
    is_priority: bool
    created_at: datetime
    cascade_state: str
    needs_follow_up: bool
    need_home_visits: bool
    need_reduced_mobility: bool
    need_chronic_followup: bool
    # RGPD art. 18: kept, not worked on; one more column of the rows already read.
    processing_limited_at: datetime | None
    # Proposed once and back in progress: the patient said the proposal did not suit them.
    first_proposed_at: datetime | None
    names: str = ""


ITEM_COLUMNS = (
    Request.id,
    Request.reference,
    Request.status,
    Request.source,
    Request.postal_code,
    Request.is_priority,
    Request.created_at,
    Request.cascade_state,
    Request.needs_follow_up,
    Request.need_home_visits,
    Request.need_reduced_mobility,
    Request.need_chronic_followup,
    Request.processing_limited_at,
    Request.first_proposed_at,
)


@dataclass(frozen=True)
class QueueRow:
    request: QueueItem
    waiting: timedelta


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    next_cursor: str | None
    counts: dict[Status, int] = field(default_factory=dict)
    alerts: int = 0
    follow_ups: int = 0


def _filter_terms(filters: QueueFilters) -> list[ColumnElement[bool]]:
    terms: list[ColumnElement[bool]] = []
    if filters.source is not None:
        terms.append(Request.source == filters.source)
    if filters.need in NEEDS:
        terms.append(NEEDS[filters.need].is_(True))
    if filters.commune_insee:
        terms.append(Request.commune_insee == filters.commune_insee)
    if filters.alert_only:
        terms.extend((Request.cascade_state == "exhausted", IN_CASCADE))
    if filters.follow_up_only:
        terms.append(FOLLOW_UP_FLAGGED)
    return terms


def _after(cursor: Cursor | None, priority: bool) -> ColumnElement[bool] | None:
    """The keyset condition inside one priority branch; None when the branch is all done."""
    if cursor is None or cursor.is_priority and not priority:
        return true()
    if not cursor.is_priority and priority:
        return None  # priority rows all came before the cursor
    # The `>=` alone is what an index range can start from; the OR then drops the few rows
    # of the cursor's own instant that came before it.
    return and_(
        Request.created_at >= cursor.created_at,
        or_(Request.created_at > cursor.created_at, Request.id > cursor.id),
    )


def _statuses(filters: QueueFilters) -> list[Status]:
    shown = FOLLOW_UP_STATUSES if filters.follow_up_only else QUEUE_STATUSES
    if filters.status is not None and filters.status in shown:
        return [filters.status]
    return list(shown)


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
    priorities = [True] if filters.priority_only else [True, False]
    extra = _filter_terms(filters)
    branches = []
    for priority in priorities:
        keyset = _after(after, priority)
        if keyset is None:
            continue
        for status in _statuses(filters):
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
    items: list[QueueItem] = []
    if branches:
        merged = union_all(*branches).subquery()
        # Merge and cut to the page first, then read the rows' columns: 51 primary-key
        # lookups, not one per branch row.
        top = (
            select(merged)
            .order_by(merged.c.is_priority.desc(), merged.c.created_at, merged.c.id)
            .limit(limit + 1)
            .subquery()
        )
        rows = session.execute(
            select(*ITEM_COLUMNS)
            .join(top, top.c.id == Request.id)
            .order_by(top.c.is_priority.desc(), top.c.created_at, top.c.id)
        )
        items = [QueueItem(**row._asdict()) for row in rows]
    has_more = len(items) > limit
    items = _with_names(session, items[:limit])
    last = items[-1] if items else None
    next_cursor = (
        Cursor(last.is_priority, last.created_at, last.id).encode()
        if has_more and last is not None
        else None
    )
    counts, alerts, follow_ups = queue_counts(session, territory_id)
    return QueuePage(
        rows=[QueueRow(item, now - item.created_at) for item in items],
        next_cursor=next_cursor,
        counts=counts,
        alerts=alerts,
        follow_ups=follow_ups,
    )


def _with_names(session: Session, items: list[QueueItem]) -> list[QueueItem]:
    """The items with their persons' names, read in one query."""
    names: dict[int, list[str]] = {item.id: [] for item in items}
    if names:
        rows = session.execute(
            select(Person.request_id, Person.first_name, Person.last_name)
            .where(Person.request_id.in_(names))
            .order_by(Person.request_id, Person.position, Person.id)
        )
        for request_id, first, last in rows:
            names[request_id].append(f"{first} {last}")
    return [replace(item, names=", ".join(names[item.id])) for item in items]


ALERTS, FOLLOW_UPS = "_alerts", "_follow_ups"


def queue_counts(session: Session, territory_id: int) -> tuple[dict[Status, int], int, int]:
    """Open requests per status, exhausted cascades, flagged follow-ups: one round trip.

    Each part is a count over one index (ix_requests_queue, ix_requests_cascade_state,
    ix_requests_follow_up) restricted to the territory, so the database need not read rows.
    """
    per_status = (
        # As plain text: the union's first column types the others' "_alerts" too.
        select(type_coerce(Request.status, String).label("key"), func.count().label("n"))
        .where(Request.territory_id == territory_id, Request.status.in_(QUEUE_STATUSES))
        .group_by(Request.status)
    )
    alerts = select(literal(ALERTS, String).label("key"), func.count().label("n")).where(
        Request.territory_id == territory_id,
        Request.cascade_state == "exhausted",
        IN_CASCADE,
        Request.status.in_(QUEUE_STATUSES),
    )
    follow_ups = select(literal(FOLLOW_UPS, String).label("key"), func.count().label("n")).where(
        Request.territory_id == territory_id,
        FOLLOW_UP_FLAGGED,
        Request.status.in_(FOLLOW_UP_STATUSES),
    )
    counts = {status: 0 for status in QUEUE_STATUSES}
    found: dict[str, int] = {}
    for key, n in session.execute(union_all(per_status, alerts, follow_ups)):
        found[key] = int(n)
    for status in QUEUE_STATUSES:
        counts[status] = found.get(status.name, 0)  # stored by name (SQLAlchemy Enum)
    return counts, found.get(ALERTS, 0), found.get(FOLLOW_UPS, 0)


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
