"""Tenant isolation in one place: a session scoped to a territory only sees that territory's rows.

Every model holding patient or doctor data mixes in TerritoryOwned. A session opened with
`scope_to_territory(session, territory_id)` gets a loader criterion on every ORM SELECT,
UPDATE and DELETE it runs, and refuses to flush a row that belongs to another territory.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from models.base import TerritoryOwned

_KEY = "territory_id"


class CrossTenantWrite(Exception):
    """A scoped session tried to write a row of another territory."""


def scope_to_territory(session: Session, territory_id: int) -> Session:
    """Restrict this session to one territory for the rest of its life."""
    session.info[_KEY] = territory_id
    return session


def scoped_territory(session: Session) -> int | None:
    """The territory a session is restricted to, or None for an unrestricted session."""
    value = session.info.get(_KEY)
    return int(value) if value is not None else None


@event.listens_for(Session, "do_orm_execute")
def _only_this_territory(state: ORMExecuteState) -> None:
    territory_id = state.session.info.get(_KEY)
    if territory_id is None or state.is_column_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(
                TerritoryOwned,
                lambda cls: cls.territory_id == territory_id,
                include_aliases=True,
            )
        )


@event.listens_for(Session, "before_flush")
def _no_foreign_rows(session: Session, _context: Any, _instances: Any) -> None:
    territory_id = session.info.get(_KEY)
    if territory_id is None:
        return
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, TerritoryOwned) and obj.territory_id not in (None, territory_id):
            raise CrossTenantWrite(f"{type(obj).__name__} of another territory")
        if isinstance(obj, TerritoryOwned) and obj.territory_id is None:
            obj.territory_id = territory_id
