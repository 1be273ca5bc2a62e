"""Right of access (RGPD article 15): a copy of everything held about a household.

The copy is machine-readable (JSON-ready, raw values) so the patient can take it elsewhere; the
desk renders the same data in French for the coordinator.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Message, Request


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def export_request_data(session: Session, request: Request) -> dict[str, Any]:
    """Everything held about the household: request, persons, events, messages (JSON-ready)."""
    messages = session.scalars(
        select(Message).where(Message.request_id == request.id).order_by(Message.id)
    ).all()
    return {
        "format": "orientation-export-1",
        "request": {
            "reference": request.reference,
            "status": request.status.value,
            "source": request.source.value,
            "created_at": _iso(request.created_at),
            "closed_at": _iso(request.closed_at),
            "anonymised_at": _iso(request.anonymised_at),
            "processing_limited_at": _iso(request.processing_limited_at),
            "consent_at": _iso(request.consent_at),
            "phone": request.phone,
            "email": request.email,
            "preferred_channel": request.preferred_channel,
            "best_time": request.best_time,
            "street": request.street,
            "postal_code": request.postal_code,
            "commune_insee": request.commune_insee,
            "reason": request.reason.value,
            "reason_detail": request.reason_detail,
            "already_sees_gp": request.already_sees_gp,
            "need_home_visits": request.need_home_visits,
            "need_reduced_mobility": request.need_reduced_mobility,
            "need_chronic_followup": request.need_chronic_followup,
            "language": request.language,
            "css_ame": request.css_ame,
            "is_priority": request.is_priority,
            "comment": request.comment,
            "agrees_to_survey": request.agrees_to_survey,
        },
        "persons": [
            {
                "first_name": person.first_name,
                "last_name": person.last_name,
                "birth_date": _iso(person.birth_date),
                "ald": person.ald,
            }
            for person in request.persons
        ],
        "events": [
            {
                "at": _iso(event.at),
                "kind": event.kind,
                "from_status": event.from_status,
                "to_status": event.to_status,
                "note": event.note,
            }
            for event in request.events
        ],
        "messages": [
            {
                "created_at": _iso(message.created_at),
                "channel": message.channel.value,
                "purpose": message.purpose,
                "recipient": message.recipient,
                "subject": message.subject,
                "body": message.body,
                "status": message.status.value,
            }
            for message in messages
        ],
    }
