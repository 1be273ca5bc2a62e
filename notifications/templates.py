"""Message texts as templates: `templates/messages/<key>.<channel>.txt`, overridable per CPTS.

Templates are rendered in a sandboxed Jinja environment because CPTS admins may edit them:
an edited template can use the variables it is given and nothing else. Text is not
HTML-escaped (SMS and plain-text e-mail); values are inserted as plain text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from models import Channel

MESSAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "messages"


class MessageTemplateError(ValueError):
    """A template (usually one edited by an admin) cannot be rendered; says why."""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str


@cache
def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=FileSystemLoader(str(MESSAGE_TEMPLATES)),
        autoescape=False,  # noqa: S701 - SMS and plain-text e-mail, never HTML
        undefined=StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        # The shipped files change only with a release (admins' edits live in the database):
        # no stat of the file each time a message is rendered, as on every submission.
        auto_reload=False,
    )


def default_source(key: str, channel: Channel) -> str:
    """The shipped text of a template, as an admin starts editing it."""
    return (MESSAGE_TEMPLATES / f"{key}.{channel.value}.txt").read_text(encoding="utf-8")


def render_message(
    key: str,
    channel: Channel,
    context: Mapping[str, Any],
    override: str | None = None,
) -> RenderedMessage:
    """Render a message. The first line 'Objet: ...' of an e-mail template is its subject."""
    environment = _environment()
    try:
        template = (
            environment.from_string(override)
            if override is not None
            else environment.get_template(f"{key}.{channel.value}.txt")
        )
        text = template.render(**context).strip()
    except TemplateError as exc:
        raise MessageTemplateError(f"modèle « {key} » : {exc}") from None
    subject = ""
    if channel is Channel.EMAIL and text.startswith("Objet:"):
        first, _, rest = text.partition("\n")
        subject, text = first.removeprefix("Objet:").strip(), rest.strip()
    return RenderedMessage(subject=subject, body=text)
