"""Three indexes made partial: they hold only the few rows their queries look for.

- ix_requests_cascade_state: requests in a cascade of doctors (running or run out), now led by
  cascade_state, so that the dispatcher's pass over running cascades, which names no CPTS,
  seeks them instead of reading the whole index;
- ix_requests_follow_up: requests the follow-up flagged for a call back;
- ix_messages_provider_message_id: messages a provider has taken.

A questionnaire submission (and any request or message outside these) then writes no entry in
them. The queries carry each index's condition themselves (models.request.IN_CASCADE,
FOLLOW_UP_FLAGGED, models.message.HAS_PROVIDER_ID): neither database infers it otherwise.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 04:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IN_CASCADE = "cascade_state <> ''"
HAS_PROVIDER_ID = "provider_message_id <> ''"


def upgrade() -> None:
    op.drop_index("ix_requests_cascade_state", table_name="requests")
    op.create_index(
        "ix_requests_cascade_state", "requests", ["cascade_state", "territory_id", "status"],
        postgresql_where=sa.text(IN_CASCADE), sqlite_where=sa.text(IN_CASCADE),
    )  # fmt: skip
    op.drop_index("ix_requests_follow_up", table_name="requests")
    op.create_index(
        "ix_requests_follow_up", "requests", ["territory_id", "needs_follow_up", "status"],
        postgresql_where=sa.text("needs_follow_up"), sqlite_where=sa.text("needs_follow_up = 1"),
    )  # fmt: skip
    op.drop_index("ix_messages_provider_message_id", table_name="messages")
    op.create_index(
        "ix_messages_provider_message_id", "messages", ["provider_message_id"],
        postgresql_where=sa.text(HAS_PROVIDER_ID), sqlite_where=sa.text(HAS_PROVIDER_ID),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_messages_provider_message_id", table_name="messages")
    op.create_index("ix_messages_provider_message_id", "messages", ["provider_message_id"])
    op.drop_index("ix_requests_follow_up", table_name="requests")
    op.create_index(
        "ix_requests_follow_up", "requests", ["territory_id", "needs_follow_up", "status"]
    )
    op.drop_index("ix_requests_cascade_state", table_name="requests")
    op.create_index(
        "ix_requests_cascade_state", "requests", ["territory_id", "cascade_state", "status"]
    )
