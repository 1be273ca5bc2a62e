"""Status changes of a request, each recorded as an event (who, when, from, to, note)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from models import OPEN_STATUSES, Request, RequestEvent, Status
from orientation.services.local_time import in_paris


class TransitionRefused(ValueError):
    """This status change is not allowed from the request's current status."""


class ProcessingLimited(TransitionRefused):
    """RGPD article 18: the patient asked to limit the processing of their request.

    The request is kept but not worked on until the limitation is lifted (rights desk). The
    message is French: views show it to the coordinator or the patient as it is."""

    def __init__(self, since: datetime) -> None:
        super().__init__(
            f"Le traitement de cette demande est limité depuis le {in_paris(since):%d/%m/%Y}, à la "
            "demande du patient : elle est conservée mais ne peut pas être traitée. La "
            "limitation se lève depuis « Droits des patients »."
        )
        self.since = since


def ensure_workable(request: Request) -> None:
    """Raise ProcessingLimited when the request's processing is limited (RGPD art. 18)."""
    if request.processing_limited_at is not None:
        raise ProcessingLimited(request.processing_limited_at)


# received -> eligible | out_of_territory -> in_progress -> doctors_contacted -> proposed
# -> oriented; closed and withdrawn from any open state (DESIGN.md).
ALLOWED: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset({Status.ELIGIBLE, Status.OUT_OF_TERRITORY}),
    Status.ELIGIBLE: frozenset({Status.IN_PROGRESS, Status.DOCTORS_CONTACTED, Status.PROPOSED,
                                Status.OUT_OF_TERRITORY}),
    Status.OUT_OF_TERRITORY: frozenset({Status.ELIGIBLE}),
    Status.IN_PROGRESS: frozenset({Status.DOCTORS_CONTACTED, Status.PROPOSED}),
    Status.DOCTORS_CONTACTED: frozenset({Status.IN_PROGRESS, Status.PROPOSED}),
    Status.PROPOSED: frozenset({Status.ORIENTED, Status.IN_PROGRESS, Status.DOCTORS_CONTACTED}),
    Status.ORIENTED: frozenset(),
    Status.CLOSED: frozenset(),
    Status.WITHDRAWN: frozenset(),
}  # fmt: skip


def reached_columns(to: Status, at: datetime) -> dict[str, Any]:
    """What reaching this status sets on the request for the indicators (statuses ever
    reached, first proposal, orientation); for writers of plain rows (intake)."""
    if to is Status.ELIGIBLE:
        return {"reached_eligible": True}
    if to is Status.OUT_OF_TERRITORY:
        return {"reached_out_of_territory": True}
    if to is Status.PROPOSED:
        return {"first_proposed_at": at}
    if to is Status.ORIENTED:
        return {"oriented_at": at}
    return {}


def note_reached(request: Request, to: Status, at: datetime) -> None:
    """Keep the request's indicator columns right when it reaches a status at `at`."""
    for name, value in reached_columns(to, at).items():
        if name == "first_proposed_at" and request.first_proposed_at is not None:
            continue  # the first proposal counts, not a later one after a refusal
        setattr(request, name, value)


def change_status(
    request: Request,
    to: Status,
    *,
    now: datetime,
    actor_user_id: int | None = None,
    actor_label: str = "",
    note: str = "",
) -> RequestEvent:
    """Move the request to a new status and record the event; raise TransitionRefused.

    A limited request (RGPD art. 18) only moves to withdrawn: the patient's own withdrawal
    and an erasure stay possible, since they end the processing rather than pursue it."""
    if to is not Status.WITHDRAWN:
        ensure_workable(request)
    current = Status(request.status)
    closing = to in (Status.CLOSED, Status.WITHDRAWN) and current in OPEN_STATUSES
    if not closing and to not in ALLOWED[current]:
        raise TransitionRefused(f"{current.value} -> {to.value}")
    event = RequestEvent(
        territory_id=request.territory_id,
        at=now,
        kind="status",
        actor_user_id=actor_user_id,
        actor_label=actor_label,
        from_status=current.value,
        to_status=to.value,
        note=note,
    )
    request.events.append(event)
    request.status = to
    request.updated_at = now
    note_reached(request, to, now)
    if to in (Status.CLOSED, Status.WITHDRAWN, Status.ORIENTED):
        request.closed_at = now
    return event


def record_event(
    request: Request,
    kind: str,
    *,
    now: datetime,
    actor_user_id: int | None = None,
    actor_label: str = "",
    note: str = "",
) -> RequestEvent:
    """Record a notable action that does not change the status (message sent, answer...)."""
    event = RequestEvent(
        territory_id=request.territory_id,
        at=now,
        kind=kind,
        actor_user_id=actor_user_id,
        actor_label=actor_label,
        from_status=request.status.value if request.status else "",
        to_status=request.status.value if request.status else "",
        note=note,
    )
    request.events.append(event)
    return event
