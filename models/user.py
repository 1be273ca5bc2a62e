"""User: staff who log in (instance admin, CPTS admin, coordinator, referring professional)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, utcnow
from models.territory import Territory


class Role(enum.StrEnum):
    ADMIN = "admin"  # the whole instance
    CPTS_ADMIN = "cpts_admin"  # one CPTS: territory, staff, templates, retention
    COORDINATOR = "coordinator"  # one CPTS: the queue and the doctors
    REFERRER = "referrer"  # a professional or CPAM agent who registers patients


class User(Base):
    """A person with a login. Everyone but an instance admin belongs to one territory."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=20))
    territory_id: Mapped[int | None] = mapped_column(
        ForeignKey("territories.id", ondelete="RESTRICT"), index=True
    )
    profession: Mapped[str] = mapped_column(String(80), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Kept in each of the user's sessions at login; raised on logout, on a new password and on
    # deactivation, so that every session (cookie) of before stops counting.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_login_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    territory: Mapped[Territory | None] = relationship()


class LoginFailure(Base):
    """Wrong passwords for one account from one client address, within LOCKOUT of the first.

    Counted per address so that someone elsewhere cannot lock the account's owner out; the
    row goes at the next success from that address, or once its window is over."""

    __tablename__ = "login_failures"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    ip: Mapped[str] = mapped_column(String(45), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failed_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
