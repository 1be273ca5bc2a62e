"""Per-CPTS wording of messages: the admin's override when there is one, else the shipped text.

An edited template is checked by rendering it with sample values before it is saved, so a
typo never reaches a patient as a broken message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import TemplateSyntaxError, meta
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, MessageTemplate
from notifications import templates as shipped
from notifications.sms import SmsLength, sms_length
from notifications.templates import (
    MessageTemplateError,
    RenderedMessage,
    UnknownVariable,
    render_message,
)
from orientation.services import audit

logger = logging.getLogger(__name__)

MAX_TEMPLATE_LENGTH = 5000

# Values shown in previews for the variables templates commonly use; any other variable
# gets a placeholder with its name.
SAMPLE_VALUES: dict[str, str] = {
    "reference": "K7QM-4T2X",
    "first_name": "Jeanne",
    "last_name": "Martin",
    "territory_name": "CPTS Exemple",
    "territory_phone": "03 20 00 00 00",
    "doctor_name": "Dr Camille Lefèvre",
    "doctor_address": "12 rue de la Gare, 59280 Armentières",
    "doctor_phone": "03 20 11 22 33",
    "link": "https://orientation.example.org/l/AbCdEf123",
}


class UnknownTemplate(LookupError):
    """No shipped template has this key and channel."""


class _Sample(str):
    """A preview value that also stands for an object or a list (`doctor.name`, loops)."""

    def __getattr__(self, name: str) -> _Sample:
        if name.startswith("_"):
            raise AttributeError(name)
        return _Sample(SAMPLE_VALUES.get(name, f"[{name}]"))

    def __iter__(self) -> Any:
        yield _Sample(str(self))


@dataclass(frozen=True)
class TemplateEntry:
    key: str
    channel: Channel
    overridden: bool


@dataclass(frozen=True)
class Preview:
    rendered: RenderedMessage
    sms: SmsLength | None  # length and segments, for SMS templates


def shipped_templates() -> list[tuple[str, Channel]]:
    """(key, channel) of every template in templates/messages, sorted."""
    found = []
    for path in sorted(shipped.MESSAGE_TEMPLATES.glob("*.txt")):
        key, _, channel = path.name.removesuffix(".txt").rpartition(".")
        if key and channel in {c.value for c in Channel}:
            found.append((key, Channel(channel)))
    return found


def _check_known(key: str, channel: Channel) -> None:
    if (key, channel) not in shipped_templates():
        raise UnknownTemplate(f"{key}.{channel.value}")


def _override(
    session: Session, territory_id: int, key: str, channel: Channel
) -> MessageTemplate | None:
    return session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.territory_id == territory_id,
            MessageTemplate.key == key,
            MessageTemplate.channel == channel,
        )
    )


def override_body(session: Session, territory_id: int, key: str, channel: Channel) -> str | None:
    """The CPTS's own text of a template, or None: the shipped one applies."""
    override = _override(session, territory_id, key, channel)
    return override.body if override else None


def render_with_override(
    key: str, channel: Channel, context: Mapping[str, Any], override: str | None
) -> RenderedMessage:
    """Render the CPTS's text; should it fail on real values, the shipped text instead.

    An edited text is checked with sample values when it is saved, but a real value can still
    break it (a filter on an empty list...). The message then goes out in the shipped wording:
    a patient's submission or a doctor's reminder never fails because of a template.
    """
    if override is not None:
        try:
            return render_message(key, channel, context, override=override)
        except MessageTemplateError:
            logger.warning("edited template %s.%s failed; shipped text used", key, channel.value)
    return render_message(key, channel, context)


def render_for_territory(
    session: Session, territory_id: int, key: str, channel: Channel, context: Mapping[str, Any]
) -> RenderedMessage:
    """Render a message with the CPTS's own wording when it has one."""
    return render_with_override(
        key, channel, context, override_body(session, territory_id, key, channel)
    )


def list_templates(session: Session, territory_id: int) -> list[TemplateEntry]:
    overridden = {
        (row.key, row.channel)
        for row in session.scalars(
            select(MessageTemplate).where(MessageTemplate.territory_id == territory_id)
        )
    }
    return [TemplateEntry(k, c, (k, c) in overridden) for k, c in shipped_templates()]


def current_text(session: Session, territory_id: int, key: str, channel: Channel) -> str:
    """The text the admin starts editing: the CPTS's version, else the shipped one."""
    _check_known(key, channel)
    override = _override(session, territory_id, key, channel)
    return override.body if override else shipped.default_source(key, channel)


def sample_context(key: str, channel: Channel) -> dict[str, Any]:
    """Sample values for the variables the shipped template uses (and only those)."""
    environment = shipped._environment()
    try:
        names = meta.find_undeclared_variables(
            environment.parse(shipped.default_source(key, channel))
        )
    except TemplateSyntaxError:
        names = set()
    return {name: _Sample(SAMPLE_VALUES.get(name, f"[{name}]")) for name in sorted(names)}


def _links_of(context: dict[str, Any]) -> list[str]:
    """The variables of a shipped message that carry a link (`link`, `accept_url`...): what
    the recipient acts on, which an edited text must keep."""
    return [name for name in context if name.endswith(("link", "_url"))]


def _variables_of(body: str) -> set[str]:
    try:
        return meta.find_undeclared_variables(shipped._environment().parse(body))
    except TemplateSyntaxError:
        return set()


def preview(key: str, channel: Channel, body: str) -> Preview:
    """Render a draft with sample values; raise MessageTemplateError saying what is wrong."""
    _check_known(key, channel)
    if not body.strip():
        raise MessageTemplateError("le texte est vide")
    if len(body) > MAX_TEMPLATE_LENGTH:
        raise MessageTemplateError(f"le texte dépasse {MAX_TEMPLATE_LENGTH} caractères")
    context = sample_context(key, channel)
    try:
        rendered = render_message(key, channel, context, override=body)
    except UnknownVariable as exc:
        known = ", ".join(f"{{{{ {name} }}}}" for name in context) or "aucune"
        raise MessageTemplateError(f"{exc} (variables de ce message : {known})") from None
    missing = [name for name in _links_of(context) if name not in _variables_of(body)]
    if missing:
        raise MessageTemplateError(
            "gardez "
            + " et ".join(f"{{{{ {name} }}}}" for name in missing)
            + " : sans ce lien, la personne qui reçoit le message ne peut pas y répondre"
        )
    if channel is Channel.EMAIL and not rendered.subject:
        raise MessageTemplateError("la première ligne d'un e-mail doit être « Objet: … »")
    return Preview(rendered, sms_length(rendered.body) if channel is Channel.SMS else None)


def save_template(
    session: Session,
    territory_id: int,
    key: str,
    channel: Channel,
    body: str,
    *,
    user_id: int,
    now: datetime,
) -> Preview:
    """Validate and store the CPTS's wording (audited); nothing is saved if it does not render."""
    checked = preview(key, channel, body)
    override = _override(session, territory_id, key, channel)
    if override is None:
        override = MessageTemplate(territory_id=territory_id, key=key, channel=channel, body=body)
        session.add(override)
    override.body = body
    override.updated_at = now
    override.updated_by_user_id = user_id
    audit.record(
        session,
        "message_template_saved",
        territory_id=territory_id,
        user_id=user_id,
        object_type="message_template",
        object_id=f"{key}.{channel.value}",
    )
    return checked


def reset_template(
    session: Session, territory_id: int, key: str, channel: Channel, *, user_id: int
) -> None:
    """Go back to the shipped wording (audited)."""
    _check_known(key, channel)
    override = _override(session, territory_id, key, channel)
    if override is not None:
        session.delete(override)
        audit.record(
            session,
            "message_template_reset",
            territory_id=territory_id,
            user_id=user_id,
            object_type="message_template",
            object_id=f"{key}.{channel.value}",
        )
