"""A request remembers a fingerprint of the answers its submission key was first used with.

An API client chooses its own Idempotency-Key: a key used again with other answers (another
caller's key, or a client's bug) must not return the first request and its private link. The
key is now also stored scoped to its CPTS (services.intake.scoped_key), in the same column.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("requests") as batch_op:
        batch_op.add_column(sa.Column("submission_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests") as batch_op:
        batch_op.drop_column("submission_fingerprint")
