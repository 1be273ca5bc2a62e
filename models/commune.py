"""Commune: reference geography (INSEE COG), loaded from the file shipped in geo/data."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base


class Commune(Base):
    """A French commune: code, name, postal codes and a point guaranteed inside it."""

    __tablename__ = "communes"

    insee: Mapped[str] = mapped_column(String(5), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    departement: Mapped[str] = mapped_column(String(3), index=True)
    # ';'-separated, sorted: a commune can have several postal codes (Lille has five).
    postal_codes: Mapped[str] = mapped_column(String(120))
    population: Mapped[int] = mapped_column(Integer)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
