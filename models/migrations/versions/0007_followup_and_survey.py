"""Follow-up after a proposal and the year-end survey: request flags, territory delay, answers.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 04:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("found_gp", sa.Boolean(), nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("territory_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
            name=op.f("fk_survey_answers_territory_id_territories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answers")),
    )
    with op.batch_alter_table("survey_answers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_survey_answers_period"), ["period"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_survey_answers_territory_id"), ["territory_id"], unique=False
        )
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("follow_up_sent_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("follow_up_answered_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("needs_follow_up", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("survey_sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("survey_answered_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("territories", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("follow_up_days", sa.Integer(), nullable=False, server_default="30")
        )


def downgrade() -> None:
    with op.batch_alter_table("territories", schema=None) as batch_op:
        batch_op.drop_column("follow_up_days")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("survey_answered_at")
        batch_op.drop_column("survey_sent_at")
        batch_op.drop_column("needs_follow_up")
        batch_op.drop_column("follow_up_answered_at")
        batch_op.drop_column("follow_up_sent_at")
    with op.batch_alter_table("survey_answers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_survey_answers_territory_id"))
        batch_op.drop_index(batch_op.f("ix_survey_answers_period"))
    op.drop_table("survey_answers")
