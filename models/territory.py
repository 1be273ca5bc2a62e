"""Territory: a CPTS, the tenant of the instance, and its communes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow


class Territory(Base):
    """A CPTS (Communauté Professionnelle Territoriale de Santé) and its settings."""

    __tablename__ = "territories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    postal_address: Mapped[str] = mapped_column(Text, default="")
    dpo_contact: Mapped[str] = mapped_column(Text, default="")
    # Beyond this great-circle distance from the patient's home a doctor is not proposed.
    max_distance_km: Mapped[int] = mapped_column(Integer, default=15)
    # Volunteer doctors confirm their availability every six months (fiche 1).
    availability_refresh_months: Mapped[int] = mapped_column(Integer, default=6)
    doctor_answer_delay_hours: Mapped[int] = mapped_column(Integer, default=48)
    # Days after a proposal before asking the patient whether it worked (issue 6: 30 days).
    follow_up_days: Mapped[int] = mapped_column(Integer, default=30)
    # RGPD retention (months); indicators survive anonymisation.
    retention_closed_months: Mapped[int] = mapped_column(Integer, default=12)
    retention_out_of_territory_months: Mapped[int] = mapped_column(Integer, default=3)
    retention_message_body_months: Mapped[int] = mapped_column(Integer, default=3)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    communes: Mapped[list[TerritoryCommune]] = relationship(
        back_populates="territory", cascade="all, delete-orphan", order_by="TerritoryCommune.insee"
    )

    @property
    def insee_codes(self) -> list[str]:
        return [link.insee for link in self.communes]


class TerritoryCommune(Base):
    """One commune (by INSEE code) inside a territory."""

    __tablename__ = "territory_communes"

    territory_id: Mapped[int] = mapped_column(
        ForeignKey("territories.id", ondelete="CASCADE"), primary_key=True
    )
    insee: Mapped[str] = mapped_column(
        String(5), ForeignKey("communes.insee"), primary_key=True, index=True
    )

    territory: Mapped[Territory] = relationship(back_populates="communes")
