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


# Plain ALTER TABLE on both databases (SQLite 3.35 and later drops a column): a batch
# operation would rebuild `requests` on SQLite, and dropping the old table there deletes the
# persons and events that reference it (ON DELETE CASCADE).


def upgrade() -> None:
    op.add_column("requests", sa.Column("submission_fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE requests DROP COLUMN submission_fingerprint")
