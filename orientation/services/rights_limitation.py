"""Right to limitation of processing (RGPD article 18) and its lifting.

A limited request is kept but not worked on: nothing about the patient goes to a doctor or
leaves the outbox until the patient asks to lift the limitation.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from models import Request
from notifications.outbox import withhold_queued
from orientation.services.doctor_contacts import cancel_open_contacts
from orientation.services.workflow import record_event

WITHHELD = "Non envoyé : traitement limité à la demande du patient."


def limit_processing(
    session: Session,
    request: Request,
    now: datetime,
    *,
    actor_user_id: int | None = None,
    actor_label: str = "",
) -> bool:
    """Freeze the request (kept, not worked on); False if it was already limited.

    While limited, workflow.ensure_workable refuses every action on the request but the
    patient's withdrawal and an erasure; lift_limitation ends it."""
    if request.processing_limited_at is not None:
        return False
    request.processing_limited_at = now
    # The doctors' asks still open are cancelled, as when a request is closed: their links
    # stop working, so no doctor can accept (reserve a place, learn who the patient is)
    # while the request is frozen, and a cancelled ask does not count as asked, so after a
    # lifting the coordinator may ask the same doctors again. Nothing is sent to them
    # (cancel_open_contacts sends nothing): a message about the patient to a third party
    # would itself be processing; a doctor who follows the link is told it is no longer
    # needed. It also stops a running cascade; lifting does not restart it, the
    # coordinator decides.
    cancelled = cancel_open_contacts(session, request, now)
    # Messages still waiting in the outbox for this request (a proposal queued a moment ago)
    # are not sent either; the dispatcher never takes a failed message, and the outbox
    # viewer's retry refuses one of a limited request.
    withhold_queued(session, request.id, WITHHELD)
    note = f"{cancelled} sollicitation(s) de médecin annulée(s)" if cancelled else ""
    record_event(
        request,
        "limited",
        now=now,
        actor_user_id=actor_user_id,
        actor_label=actor_label,
        note=note,
    )
    return True


def lift_limitation(
    request: Request, now: datetime, *, actor_user_id: int | None = None, actor_label: str = ""
) -> bool:
    """The patient asked to lift the limitation: the request can be worked on again; False
    if it was not limited."""
    if request.processing_limited_at is None:
        return False
    request.processing_limited_at = None
    request.updated_at = now
    record_event(
        request, "limitation_lifted", now=now, actor_user_id=actor_user_id, actor_label=actor_label
    )
    return True
