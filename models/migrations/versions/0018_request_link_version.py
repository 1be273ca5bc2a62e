"""A patient's private link can be revoked: `requests.link_version`.

The private link (/suivi/<token>) carries a version number that nothing checked, so a link
someone else got (a shared phone, a forwarded SMS) opened the request for a year. The link now
opens the request only at the request's `link_version`; the coordinator's rights desk raises it
and sends the person a new link. Links of before carry version 0, as every request starts: they
keep working.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-10 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE ADD COLUMN with its default: a batch operation would rebuild
        # `requests`, and dropping the old table there deletes its persons and events by cascade.
        op.execute("ALTER TABLE requests ADD COLUMN link_version INTEGER DEFAULT 0 NOT NULL")
    else:
        op.add_column(
            "requests",
            sa.Column("link_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        )


def downgrade() -> None:
    # Plain ALTER TABLE on both databases (SQLite 3.35 and later drops a column).
    op.execute("ALTER TABLE requests DROP COLUMN link_version")
