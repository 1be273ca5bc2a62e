"""Doctor contacts (asking doctors about a request) and the cascade state of a request.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "doctor_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "ASKED",
                "ACCEPTED",
                "DECLINED",
                "EXPIRED",
                "CANCELLED",
                name="contactstatus",
                native_enum=False,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("in_cascade", sa.Boolean(), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=True),
        sa.Column("asked_by_user_id", sa.Integer(), nullable=True),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("territory_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["asked_by_user_id"],
            ["users.id"],
            name=op.f("fk_doctor_contacts_asked_by_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name=op.f("fk_doctor_contacts_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["requests.id"],
            name=op.f("fk_doctor_contacts_request_id_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
            name=op.f("fk_doctor_contacts_territory_id_territories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctor_contacts")),
    )
    with op.batch_alter_table("doctor_contacts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_doctor_contacts_doctor_id"), ["doctor_id"], unique=False
        )
        batch_op.create_index(
            "ix_doctor_contacts_pending", ["status", "in_cascade", "asked_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_doctor_contacts_request_id"), ["request_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_doctor_contacts_territory_id"), ["territory_id"], unique=False
        )

    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cascade_state", sa.String(length=12), nullable=False, server_default="")
        )
        batch_op.create_index(
            "ix_requests_cascade_state", ["territory_id", "cascade_state", "status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_index("ix_requests_cascade_state")
        batch_op.drop_column("cascade_state")
    with op.batch_alter_table("doctor_contacts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_doctor_contacts_territory_id"))
        batch_op.drop_index(batch_op.f("ix_doctor_contacts_request_id"))
        batch_op.drop_index("ix_doctor_contacts_pending")
        batch_op.drop_index(batch_op.f("ix_doctor_contacts_doctor_id"))
    op.drop_table("doctor_contacts")
