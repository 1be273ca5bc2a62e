"""Recording audited actions (reads and changes of personal data, logins, exports)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from models import AuditEntry


def record(
    session: Session,
    action: str,
    *,
    territory_id: int | None = None,
    user_id: int | None = None,
    actor_label: str = "",
    object_type: str = "",
    object_id: str | int = "",
    ip: str = "",
    **details: Any,
) -> AuditEntry:
    """Add an audit entry to the session; it is committed with the action it describes."""
    entry = AuditEntry(
        action=action,
        territory_id=territory_id,
        user_id=user_id,
        actor_label=actor_label,
        object_type=object_type,
        object_id=str(object_id),
        ip=ip[:45],
        details=details,
    )
    session.add(entry)
    return entry


def entry_row(
    action: str,
    *,
    territory_id: int | None = None,
    user_id: int | None = None,
    actor_label: str = "",
    object_type: str = "",
    object_id: str | int = "",
    ip: str = "",
    **details: Any,
) -> dict[str, Any]:
    """Like `record`, as a row for an INSERT with the transaction's other rows (the submission
    hot path), without an ORM object."""
    return {
        "action": action,
        "territory_id": territory_id,
        "user_id": user_id,
        "actor_label": actor_label,
        "object_type": object_type,
        "object_id": str(object_id),
        "ip": ip[:45],
        "details": details,
    }
