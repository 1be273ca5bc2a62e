"""Covering indexes for the indicators and exports over a period (issue 6 performance).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 06:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REQUEST_COLUMNS = [
    "territory_id", "created_at", "status", "source", "css_ame", "need_home_visits",
    "referrer_id", "oriented_doctor_id",
]  # fmt: skip


def upgrade() -> None:
    op.create_index("ix_requests_reports", "requests", REQUEST_COLUMNS, unique=False)
    op.create_index("ix_persons_criteria", "persons", ["request_id", "birth_date", "ald"])
    op.create_index(
        "ix_request_events_reached", "request_events", ["request_id", "to_status", "kind", "at"]
    )


def downgrade() -> None:
    op.drop_index("ix_request_events_reached", table_name="request_events")
    op.drop_index("ix_persons_criteria", table_name="persons")
    op.drop_index("ix_requests_reports", table_name="requests")
