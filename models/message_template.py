"""MessageTemplate: a CPTS's own wording of one message, replacing the shipped template."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TerritoryOwned, utcnow
from models.message import Channel


class MessageTemplate(TerritoryOwned, Base):
    """The text a CPTS admin wrote for `templates/messages/<key>.<channel>.txt`."""

    __tablename__ = "message_templates"
    __table_args__ = (UniqueConstraint("territory_id", "key", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(60))
    channel: Mapped[Channel] = mapped_column(Enum(Channel, native_enum=False, length=10))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
