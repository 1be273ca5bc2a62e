"""Declarative base shared by every model, with constraint names that migrations can rely on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy import DateTime, ForeignKey, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current instant, timezone-aware (UTC)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored as UTC and always read back timezone-aware, on SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class TerritoryOwned:
    """Mixin for every row that holds patient or doctor data: it belongs to exactly one CPTS.

    Queries on a session opened for one territory are filtered on this column automatically
    (see models.tenancy), so a coordinator's session cannot read another CPTS's rows.
    """

    # An index of its own on territory_id, unless the class says otherwise: every insert pays
    # for each index (a questionnaire submission writes five tables), so rows always reached
    # through their request (persons, events) and requests (whose composite indexes all start
    # with territory_id) go without.
    territory_indexed: ClassVar[bool] = True

    @declared_attr
    def territory_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(
            Integer,
            ForeignKey("territories.id", ondelete="RESTRICT"),
            index=cls.territory_indexed,
            nullable=False,
        )
