"""Reading the audit trail for the admin view: filters by period, action, user and object."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from models import AuditEntry, User

PAGE_SIZE = 200


@dataclass(frozen=True)
class AuditFilter:
    territory_id: int | None  # None: the whole instance (instance admin only)
    since: datetime | None = None
    until: datetime | None = None
    action: str = ""  # a prefix: "login" matches login.success and login.failed
    user_id: int | None = None
    object_type: str = ""
    object_id: str = ""


def _query(criteria: AuditFilter) -> Select[Any]:
    query = select(AuditEntry)
    if criteria.territory_id is not None:
        query = query.where(AuditEntry.territory_id == criteria.territory_id)
    if criteria.since is not None:
        query = query.where(AuditEntry.at >= criteria.since)
    if criteria.until is not None:
        query = query.where(AuditEntry.at < criteria.until)
    if criteria.action:
        query = query.where(AuditEntry.action.startswith(criteria.action, autoescape=True))
    if criteria.user_id is not None:
        query = query.where(AuditEntry.user_id == criteria.user_id)
    if criteria.object_type:
        query = query.where(AuditEntry.object_type == criteria.object_type)
    if criteria.object_id:
        query = query.where(AuditEntry.object_id == criteria.object_id)
    return query


def search(session: Session, criteria: AuditFilter, limit: int = PAGE_SIZE) -> Sequence[AuditEntry]:
    """The newest matching entries first."""
    query = _query(criteria).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    return list(session.scalars(query))


def known_actions(session: Session, territory_id: int | None) -> list[str]:
    query = select(AuditEntry.action).distinct().order_by(AuditEntry.action)
    if territory_id is not None:
        query = query.where(AuditEntry.territory_id == territory_id)
    return list(session.scalars(query))


def users_by_id(session: Session, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {user.id: user for user in session.scalars(select(User).where(User.id.in_(ids)))}
