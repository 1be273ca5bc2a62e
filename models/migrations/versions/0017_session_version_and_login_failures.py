"""Staff sessions can be ended from the server, and wrong passwords lock per client address.

`users.session_version` is copied into a staff session at login and compared on every request
(orientation.auth): logging out, a new password and a deactivation raise it, so the cookies of
before stop counting, on every device. Until now a copied cookie stayed valid for its whole
lifetime, even after logout.

Wrong passwords were counted on the account itself (`users.failed_logins`, `locked_until`):
anyone who knew a coordinator's e-mail could lock them out, and the count never decayed. They
are now counted in `login_failures`, one row per account and client address, forgotten after
the lockout window. Counts of before are dropped: at worst a locked account opens early.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE ADD COLUMN with its default: a batch operation would rebuild
        # `users`, and dropping the old table there trips the foreign keys that reference it.
        op.execute("ALTER TABLE users ADD COLUMN session_version INTEGER DEFAULT 0 NOT NULL")
    else:
        op.add_column(
            "users",
            sa.Column("session_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
    # Plain ALTER TABLE on both databases (SQLite 3.35 and later drops a column).
    op.execute("ALTER TABLE users DROP COLUMN failed_logins")
    op.execute("ALTER TABLE users DROP COLUMN locked_until")
    op.create_table(
        "login_failures",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_login_failures_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "ip", name=op.f("pk_login_failures")),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_table("login_failures")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE users ADD COLUMN failed_logins INTEGER DEFAULT 0 NOT NULL")
        op.execute("ALTER TABLE users ADD COLUMN locked_until DATETIME")
    else:
        op.add_column(
            "users",
            sa.Column("failed_logins", sa.Integer(), server_default=sa.text("0"), nullable=False),
        )
        op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True)))
    op.execute("ALTER TABLE users DROP COLUMN session_version")
