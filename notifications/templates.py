"""Message texts as templates: `templates/messages/<key>.<channel>.txt`, overridable per CPTS.

Templates are rendered in a sandboxed Jinja environment because CPTS admins may edit them:
an edited template can use the variables it is given and nothing else. Text is not
HTML-escaped (SMS and plain-text e-mail); values are inserted as plain text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateSyntaxError,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from models import Channel
from notifications.template_sandbox import MAX_RENDERED_LENGTH, MessageSandbox, TooCostly

__all__ = [
    "MAX_RENDERED_LENGTH",
    "MessageTemplateError",
    "RenderedMessage",
    "TooCostly",
    "UnknownVariable",
    "default_source",
    "render_message",
]

MESSAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "messages"


class MessageTemplateError(ValueError):
    """A template (usually one edited by an admin) cannot be rendered; says why, in French."""


class UnknownVariable(MessageTemplateError):
    """The template uses a variable this message does not have (`name`)."""

    def __init__(self, key: str, name: str) -> None:
        super().__init__(f"modèle « {key} » : la variable {{{{ {name} }}}} n'existe pas ici")
        self.name = name


_UNDEFINED_NAME = re.compile(r"^'([^']+)' is undefined$")


def _in_french(key: str, exc: Exception) -> MessageTemplateError:
    """Jinja's English error, as an admin who edited the text can act on it."""
    if isinstance(exc, TemplateSyntaxError):
        return MessageTemplateError(
            f"modèle « {key} » : syntaxe incorrecte à la ligne {exc.lineno} (chaque {{{{ "
            "doit être fermé par }}, chaque {% par %})"
        )
    found = _UNDEFINED_NAME.match(str(exc)) if isinstance(exc, UndefinedError) else None
    if found:
        return UnknownVariable(key, found.group(1))
    if isinstance(exc, TooCostly):
        return MessageTemplateError(f"modèle « {key} » : {exc}")
    if isinstance(exc, (SecurityError, UndefinedError)):
        # The sandbox refuses attributes such as __class__ ("... is unsafe").
        return MessageTemplateError(f"modèle « {key} » : opération interdite dans un message")
    return MessageTemplateError(f"modèle « {key} » : ce texte ne peut pas être mis en forme")


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str


@cache
def _environment() -> SandboxedEnvironment:
    return MessageSandbox(
        optimized=False,  # no constant folded while compiling, outside call_binop's checks
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
    """Render a message. The first line 'Objet: ...' of an e-mail template is its subject.

    Raise MessageTemplateError, in French, when the text fails or asks too much (TooCostly)."""
    environment = _environment()
    try:
        template = (
            environment.from_string(override)
            if override is not None
            else environment.get_template(f"{key}.{channel.value}.txt")
        )
        text = template.render(**context).strip()
    # An edited text is an expression language: {{ 1/0 }} raises what Python raises.
    except Exception as exc:  # noqa: BLE001 - every failure is the text's, said in French
        raise _in_french(key, exc) from None
    subject = ""
    if channel is Channel.EMAIL and text.startswith("Objet:"):
        first, _, rest = text.partition("\n")
        subject, text = first.removeprefix("Objet:").strip(), rest.strip()
    return RenderedMessage(subject=subject, body=text)
