"""Retention (RGPD article 5.1.e): anonymise old requests and purge message bodies, per CPTS.

Meant for a daily timer (`orientation purge`). Idempotent: a second run the same day finds
nothing to do. Anonymisation keeps what the indicators count (see services.rights_erasure).

A request whose processing the patient limited (article 18) is kept as it is, with its
messages, past its retention: erasing is processing too, and a limitation is often asked for
precisely so that the data stay (article 18.1.b and c). The purge counts what it kept; once the
limitation is lifted, the next purge applies the retention.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Message, Request, Status, Territory
from orientation.services import audit
from orientation.services.rights_erasure import ERASED, anonymise_request

# Requests whose processing is over: kept retention_closed_months after closed_at.
FINISHED = (Status.CLOSED, Status.WITHDRAWN, Status.ORIENTED)


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (clamped to the month's end)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


@dataclass(frozen=True)
class PurgeReport:
    territory_id: int
    territory_name: str
    closed_anonymised: int
    out_of_territory_anonymised: int
    message_bodies_purged: int
    limited_kept: int = 0  # requests past their retention, kept because limited (article 18)

    @property
    def total(self) -> int:
        return (
            self.closed_anonymised + self.out_of_territory_anonymised + self.message_bodies_purged
        )


def purge_territory(session: Session, territory: Territory, now: datetime) -> PurgeReport:
    """Apply one CPTS's retention settings."""
    closed_before = months_before(now, territory.retention_closed_months)
    created_before = months_before(now, territory.retention_out_of_territory_months)
    due = (
        (Request.status.in_(FINISHED))
        & Request.closed_at.is_not(None)
        & (Request.closed_at < closed_before)
    ) | ((Request.status == Status.OUT_OF_TERRITORY) & (Request.created_at < created_before))
    past_retention = select(Request).where(
        Request.territory_id == territory.id, Request.anonymised_at.is_(None), due
    )
    closed, outside = [], []
    free = session.scalars(past_retention.where(Request.processing_limited_at.is_(None))).all()
    for request in free:
        if request.status is Status.OUT_OF_TERRITORY:
            outside.append(request)
            anonymise_request(session, request, now, reason="retention_out_of_territory")
        else:
            closed.append(request)
            anonymise_request(session, request, now, reason="retention")
    limited_kept = session.scalar(
        select(func.count()).select_from(
            past_retention.where(Request.processing_limited_at.is_not(None)).subquery()
        )
    )

    # Message bodies: once sent and old, only the fact that a message went out is needed.
    bodies_before = months_before(now, territory.retention_message_body_months)
    messages = session.scalars(
        select(Message).where(
            Message.territory_id == territory.id,
            Message.body_purged_at.is_(None),
            Message.created_at < bodies_before,
            # A NULL request_id (a message to a doctor) is not in the list: NOT IN alone would
            # leave those out too.
            Message.request_id.is_(None)
            | Message.request_id.not_in(
                select(Request.id).where(
                    Request.territory_id == territory.id,
                    Request.processing_limited_at.is_not(None),
                )
            ),
        )
    ).all()
    for message in messages:
        message.body = ERASED
        message.subject = ""
        message.body_purged_at = now

    report = PurgeReport(
        territory.id, territory.name, len(closed), len(outside), len(messages), limited_kept or 0
    )
    if report.total:
        audit.record(
            session,
            "retention.purge",
            territory_id=territory.id,
            actor_label="system",
            object_type="territory",
            object_id=territory.id,
            closed=report.closed_anonymised,
            out_of_territory=report.out_of_territory_anonymised,
            messages=report.message_bodies_purged,
            limited_kept=report.limited_kept,
        )
    return report


def purge(session: Session, now: datetime) -> Sequence[PurgeReport]:
    """Apply every CPTS's retention settings; the caller commits."""
    territories = session.scalars(select(Territory).order_by(Territory.id)).all()
    return [purge_territory(session, territory, now) for territory in territories]
