"""The queue counts and filters requests flagged by the follow-up: an index for it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 06:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_requests_follow_up", ["territory_id", "needs_follow_up", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_follow_up")
