"""Two partial indexes for the indicators: referring professionals, and the delays.

Over a whole period PostgreSQL's planner reads the table (seq scan) for the referrers' count
and for the delays rather than ix_requests_reports, though the index is covering and a third of
the table's size: each query cost about as much as the grouped count. Indexes holding only the
rows these queries read (requests with a referrer; requests that reached a proposal or an
orientation) are a fraction of the table, so both databases read them alone, index-only.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 19:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFERRED = "referrer_id IS NOT NULL"
REACHED = "first_proposed_at IS NOT NULL OR oriented_at IS NOT NULL"


def upgrade() -> None:
    for name, columns, where in (
        ("ix_requests_referrers", ["territory_id", "created_at", "referrer_id"], REFERRED),
        ("ix_requests_delays", ["territory_id", "created_at", "first_proposed_at", "oriented_at"],
         REACHED),
    ):  # fmt: skip
        op.create_index(
            name, "requests", columns, postgresql_where=sa.text(where), sqlite_where=sa.text(where)
        )


def downgrade() -> None:
    op.drop_index("ix_requests_delays", table_name="requests")
    op.drop_index("ix_requests_referrers", table_name="requests")
