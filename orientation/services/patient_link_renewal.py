"""A new private link for a patient: the one before stops opening their request.

Whoever holds the private link (/suivi/<token>) is the patient. When the person says someone
else has it (a shared phone, a forwarded SMS), the coordinator raises the request's
`link_version` from the rights desk: every link made before opens nothing any more, and the
new one goes to the person by the channel the acknowledgement uses. With only a landline and no
e-mail, nothing can carry it: the coordinator is shown it once, to read it out on the phone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from models import Channel, Request, Territory
from notifications.outbox import queue_message, withhold_queued
from orientation.links import LinkSigner
from orientation.services import audit
from orientation.services.intake import acknowledgement_channel, private_token
from orientation.services.local_time import in_paris
from orientation.services.message_templates import render_for_territory
from orientation.services.workflow import record_event

EVENT = "link_renewed"
PURPOSE = "link_renewed"  # the outbox message's purpose and its template's key
# Messages still waiting that carry a link made before: not sent, the new message replaces
# them (the acknowledgement gave the reference too). A proposal still goes: its doctors count.
REPLACED_PURPOSES = ("acknowledgement", PURPOSE)
REPLACED = "Non envoyé : un nouveau lien privé a été envoyé depuis, l'ancien ne fonctionne plus."
NOTES = {
    Channel.SMS: "envoyé par SMS",
    Channel.EMAIL: "envoyé par e-mail",
    None: "ni portable ni e-mail : lien donné par la coordination",
}


class RenewalRefused(Exception):
    """The link is not renewed, nothing changed; the message says why, in French."""


class AlreadyRenewed(RenewalRefused):
    """A new link was sent since the page was shown (a button pressed twice): no second one."""

    def __init__(self) -> None:
        super().__init__(
            "Un nouveau lien privé a déjà été envoyé depuis l'affichage de cette page : "
            "rien de plus n'a été envoyé."
        )


@dataclass(frozen=True)
class RenewedLink:
    """How the new link reached the person: `channel` to `recipient`, or None (no mobile nor
    e-mail): then `link` is for the coordinator to read out, shown once and kept nowhere."""

    channel: Channel | None
    recipient: str
    link: str


def _refuse_if_not_renewable(request: Request) -> None:
    if request.anonymised_at is not None:
        raise RenewalRefused(
            f"Pas de nouveau lien : cette demande a été effacée le "
            f"{in_paris(request.anonymised_at):%d/%m/%Y}, son lien n'ouvre déjà plus rien."
        )
    if request.processing_limited_at is not None:
        # RGPD article 18: while limited, nothing is sent to the person.
        raise RenewalRefused(
            f"Pas de nouveau lien : le traitement de cette demande est limité depuis le "
            f"{in_paris(request.processing_limited_at):%d/%m/%Y} à la demande du patient, et "
            "aucun message ne peut lui être envoyé. Levez d'abord la limitation si le patient "
            "le demande."
        )


def _bump_version(session: Session, request: Request, shown_version: int) -> int:
    """Raise the link's version from `shown_version`, in one UPDATE: of two posts of the same
    page (a double click, two coordinators), only the first changes anything."""
    bumped = session.execute(
        update(Request)
        .where(Request.id == request.id, Request.link_version == shown_version)
        .values(link_version=shown_version + 1)
        .execution_options(synchronize_session=False)
    )
    if bumped.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyRenewed()
    request.link_version = shown_version + 1
    return request.link_version


def _queue_new_link(
    session: Session, request: Request, channel: Channel, link: str, version: int
) -> str:
    """Queue the message with the new link; its recipient."""
    territory = session.get(Territory, request.territory_id)
    assert territory is not None  # a request belongs to a CPTS
    message = render_for_territory(
        session,
        territory.id,
        PURPOSE,
        channel,
        {
            "cpts_name": territory.name,
            "cpts_phone": territory.contact_phone,
            "cpts_email": territory.contact_email,
            "reference": request.reference,
            "link": link,
        },
    )
    recipient = request.phone if channel is Channel.SMS else request.email
    queue_message(
        session, territory_id=territory.id, channel=channel, recipient=recipient,
        subject=message.subject, body=message.body, purpose=PURPOSE,
        idempotency_key=f"{PURPOSE}:{request.id}:{version}", request_id=request.id,
    )  # fmt: skip
    return recipient


def renew_private_link(
    session: Session,
    request: Request,
    *,
    shown_version: int,
    signer: LinkSigner,
    base_url: str,
    now: datetime,
    user_id: int,
    ip: str = "",
) -> RenewedLink:
    """Revoke the request's private link and send the person a new one; commit.

    `shown_version` is the link version the coordinator's page was shown with. Raise
    RenewalRefused (erased, limited) or AlreadyRenewed (renewed since): nothing changes then."""
    _refuse_if_not_renewable(request)
    version = _bump_version(session, request, shown_version)
    link = f"{base_url.rstrip('/')}/suivi/{private_token(signer, request.id, version)}"
    for purpose in REPLACED_PURPOSES:
        withhold_queued(session, request.id, REPLACED, purpose=purpose)
    channel = acknowledgement_channel(request.phone, request.email, request.preferred_channel)
    recipient = "" if channel is None else _queue_new_link(session, request, channel, link, version)
    # Neither the event nor the audit entry holds the link: it opens the request.
    record_event(request, EVENT, now=now, actor_user_id=user_id, note=NOTES[channel])
    request.updated_at = now
    audit.record(
        session, "request.link_renewed", territory_id=request.territory_id, user_id=user_id,
        object_type="request", object_id=request.id, ip=ip,
        channel=channel.value if channel else "none",
    )  # fmt: skip
    session.commit()
    return RenewedLink(channel, recipient, link)
