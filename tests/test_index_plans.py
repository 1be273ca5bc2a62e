"""The partial indexes serve the queries that carry their condition, on both databases.

A submission writes no entry in them (they hold only requests in a cascade, requests flagged
for a call back, messages a provider has taken); these checks make sure the dispatcher's pass,
the queue's counts and filters, and the status webhook still find their rows through them.
"""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from models import Message, Request, Status
from models.message import HAS_PROVIDER_ID
from models.request import FOLLOW_UP_FLAGGED, IN_CASCADE


def _plan(session: Session, statement: Select[tuple[int]]) -> str:
    connection = session.connection()
    compiled = statement.compile(connection, compile_kwargs={"literal_binds": True})
    if connection.dialect.name == "postgresql":
        # The tables are nearly empty: ask whether the index can serve, not whether the planner
        # would prefer reading a handful of rows.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        rows = connection.exec_driver_sql(f"EXPLAIN {compiled}").scalars()
    else:
        rows = (r[3] for r in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
    return "\n".join(rows)


def test_the_dispatchers_pass_seeks_the_running_cascades(session: Session) -> None:
    plan = _plan(session, select(Request.id).where(Request.cascade_state == "running", IN_CASCADE))
    assert "ix_requests_cascade_state" in plan


def test_the_queue_counts_alerts_and_call_backs_through_their_indexes(session: Session) -> None:
    statuses = [Status.ELIGIBLE, Status.IN_PROGRESS]
    alerts = select(func.count()).where(
        Request.territory_id == 1, Request.cascade_state == "exhausted", IN_CASCADE,
        Request.status.in_(statuses),
    )  # fmt: skip
    call_backs = select(func.count()).where(
        Request.territory_id == 1, FOLLOW_UP_FLAGGED, Request.status.in_(statuses)
    )
    assert "ix_requests_cascade_state" in _plan(session, alerts)
    assert "ix_requests_follow_up" in _plan(session, call_backs)


def test_a_delivery_report_finds_its_message_by_provider_id(session: Session) -> None:
    by_sid = select(Message.id).where(Message.provider_message_id == "SM123", HAS_PROVIDER_ID)
    assert "ix_messages_provider_message_id" in _plan(session, by_sid)
