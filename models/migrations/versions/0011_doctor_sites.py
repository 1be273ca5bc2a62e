"""Doctors: secondary practice sites (one row per site beyond the main practice)

The main practice stays on `doctors` (address, point, precision), so existing data needs no
move: every doctor keeps the site it had, and gets more only when some are added. The new
status `DECLINED` (an invited doctor said no) needs no change: the enum is stored as text.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "doctor_sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("doctor_id", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=False),
        sa.Column("postal_code", sa.String(length=5), nullable=False),
        sa.Column("commune_insee", sa.String(length=5), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column(
            "location_precision",
            sa.Enum(
                "NONE",
                "COMMUNE",
                "ADDRESS",
                "MANUAL",
                name="locationprecision",
                native_enum=False,
                length=10,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("territory_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["doctor_id"],
            ["doctors.id"],
            name=op.f("fk_doctor_sites_doctor_id_doctors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
            name=op.f("fk_doctor_sites_territory_id_territories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_doctor_sites")),
    )
    op.create_index(op.f("ix_doctor_sites_doctor_id"), "doctor_sites", ["doctor_id"])
    op.create_index(op.f("ix_doctor_sites_territory_id"), "doctor_sites", ["territory_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_doctor_sites_territory_id"), table_name="doctor_sites")
    op.drop_index(op.f("ix_doctor_sites_doctor_id"), table_name="doctor_sites")
    op.drop_table("doctor_sites")
