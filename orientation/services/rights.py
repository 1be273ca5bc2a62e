"""The patients' rights desk (RGPD articles 15 to 18): find a request, note a right exercised.

Each right has its own module: access in rights_access, rectification in rights_rectification,
erasure in rights_erasure, limitation in rights_limitation. Here the desk finds the request by
its reference and records every right handled as an event of the request and an audit entry.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Request
from orientation.services import audit
from orientation.services.references import normalise_reference
from orientation.services.rights_erasure import erase_request
from orientation.services.rights_limitation import lift_limitation, limit_processing
from orientation.services.workflow import record_event


class RightKind(enum.StrEnum):
    """A right the desk handles; its value names the event (rights_*) and audit action."""

    ACCESS = "access"
    RECTIFICATION = "rectification"
    ERASURE = "erasure"
    LIMITATION = "limitation"
    LIMITATION_LIFTED = "limitation_lifted"


RIGHT_LABELS = {
    RightKind.ACCESS: "Accès (copie des données)",
    RightKind.RECTIFICATION: "Rectification",
    RightKind.ERASURE: "Effacement",
    RightKind.LIMITATION: "Limitation du traitement",
    RightKind.LIMITATION_LIFTED: "Levée de la limitation",
}


def find_request(session: Session, typed: str) -> Request | None:
    """The request of that reference, however it was typed or read out ('tse80zf4').

    With the desk's session, scoped to one CPTS, another CPTS's reference finds nothing."""
    reference = normalise_reference(typed)
    return session.scalar(select(Request).where(Request.reference == reference))


def process_rights_request(
    session: Session,
    request: Request,
    kind: RightKind,
    now: datetime,
    *,
    user_id: int,
    ip: str = "",
    note: str = "",
    fields: list[str] | None = None,
) -> None:
    """Record that a coordinator handled a rights request (event and audit entry).

    Access is recorded when the copy is produced; erasure, limitation and its lifting are
    applied here; rectification is applied by rights_rectification.correct_request before
    calling this, which gives the corrected `fields` (their names, never their values) for the
    audit entry."""
    if kind is RightKind.ERASURE:
        erase_request(session, request, now, reason="rights_request", actor_user_id=user_id)
    elif kind is RightKind.LIMITATION:
        limit_processing(session, request, now, actor_user_id=user_id)
    elif kind is RightKind.LIMITATION_LIFTED:
        lift_limitation(request, now, actor_user_id=user_id)
    details: dict[str, Any] = {"fields": list(fields)} if fields else {}
    record_event(
        request,
        f"rights_{kind.value}",
        now=now,
        actor_user_id=user_id,
        # After an erasure the note could carry what was just removed: keep only the kind.
        note="" if kind is RightKind.ERASURE else note.strip()[:500],
    )
    audit.record(
        session,
        f"rights.{kind.value}",
        territory_id=request.territory_id,
        user_id=user_id,
        object_type="request",
        object_id=request.id,
        ip=ip,
        **details,
    )
