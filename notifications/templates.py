"""Message texts as templates: `templates/messages/<key>.<channel>.txt`, overridable per CPTS.

Templates are rendered in a sandboxed Jinja environment because CPTS admins may edit them:
an edited template can use the variables it is given and nothing else. Text is not
HTML-escaped (SMS and plain-text e-mail); values are inserted as plain text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from models import Channel

MESSAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "messages"

# Bounds on what an edited text may compute. Jinja's sandbox guards attributes, not cost:
# `{{ 7 ** (3 * 10 ** 7) }}` held a worker for its whole timeout, `"a" * 10 ** 8` built 100 MB.
MAX_RENDERED_LENGTH = 20_000  # characters of a rendered message (subject and body)
MAX_SEQUENCE_LENGTH = MAX_RENDERED_LENGTH  # items of a string or list built by `*`
MAX_NUMBER_BITS = 4096  # about 1,200 digits: far beyond any real message
MAX_EXPONENT = 1024
# Loops and calls can cost time without writing anything: two nested loops over range(10000)
# held a worker until its timeout. A message goes through a few dozen steps (the proposal lists
# a handful of doctors); 100,000 empty steps take a few hundredths of a second.
MAX_STEPS = 100_000  # loop turns and calls (macros, functions) in one rendering
MAX_RENDER_SECONDS = 1.0  # also stops a loop of costly filters before the worker's timeout
_PRINTF_WIDTH = re.compile(r"%[^a-zA-Z%]*(\*|\d{5})")  # "%*d", "%99999s": a huge padding


class TooCostly(SecurityError):
    """An edited text asks for a computation or an output out of proportion (said in French)."""


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


@dataclass
class _Budget:
    """The steps and time left to the rendering under way."""

    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_RENDER_SECONDS)
    steps: int = 0

    def spend(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TooCostly(f"calcul trop long (plus de {MAX_STEPS} tours de boucle ou appels)")
        if time.monotonic() > self.deadline:
            raise TooCostly(f"calcul trop long (plus de {MAX_RENDER_SECONDS:g} s)")


# One budget per rendering, in this thread (set by _BudgetedTemplate.render).
_BUDGET: ContextVar[_Budget | None] = ContextVar("message_template_budget", default=None)


def _spend() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend()


class _BudgetedTemplate(Template):
    """A template whose rendering has a budget; templates it includes share it."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        token = _BUDGET.set(_Budget())
        try:
            return super().render(*args, **kwargs)
        finally:
            _BUDGET.reset(token)


class _CountingCodeGenerator(CodeGenerator):
    """Compiles every `{% for %}` to iterate through the sandbox's counted_loop.

    Jinja's sandbox has a hook for calls and operators, none for a loop's turns, and an empty
    loop calls nothing: its iterable is wrapped at compile time instead (code_generator_class
    is Jinja's documented way to change the code a template compiles to)."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("counted_loop"), [node.iter], [], None, None
        )
        super().visit_For(node, frame)


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str


def _bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else None


class _MessageSandbox(SandboxedEnvironment):
    """The sandbox, with the arithmetic that can be made expensive checked before it runs.

    Intercepted operators are also never folded at compile time (nor is anything else, with
    optimized=False), so saving a text cannot hang either.
    """

    intercepted_binops = frozenset({"**", "*", "%"})
    code_generator_class = _CountingCodeGenerator
    template_class = _BudgetedTemplate

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        # The filters that pad to a width given by the text: bounded as `*` and `%` are.
        center, indent, format_ = (self.filters[n] for n in ("center", "indent", "format"))
        self.filters["center"] = lambda value, width=80: center(value, _width(width))
        self.filters["indent"] = lambda value, width=4, *args, **kwargs: indent(
            value, _width(width), *args, **kwargs
        )
        self.filters["format"] = lambda value, *args, **kwargs: format_(
            _printf(str(value)), *args, **kwargs
        )

    # Jinja's own signature: the double underscores keep a template's keyword argument named
    # `context` or `obj` from clashing with these.
    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call counts: a macro calling itself twice, forty deep, writes nothing either."""
        _spend()
        return super().call(__context, __obj, *args, **kwargs)

    def counted_loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """The turns of a template's loop, each counted (see _CountingCodeGenerator)."""
        for item in iterable:
            _spend()
            yield item

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            _check_power(left, right)
        elif operator_ == "*":
            _check_product(left, right)
        elif operator_ == "%" and isinstance(left, str):
            _printf(left)
        return super().call_binop(context, operator_, left, right)

    def concat(self, chunks: Iterable[str]) -> str:
        """Join the output, stopping as soon as it is longer than a message can be (a loop
        writing without end stops here too, not at the worker's timeout)."""
        parts: list[str] = []
        total = 0
        for chunk in chunks:
            total += len(chunk)
            if total > MAX_RENDERED_LENGTH:
                raise TooCostly(f"le message obtenu dépasse {MAX_RENDERED_LENGTH} caractères")
            parts.append(chunk)
        return "".join(parts)


def _printf(text: str) -> str:
    if _PRINTF_WIDTH.search(text):
        raise TooCostly("largeur de mise en forme trop grande")
    return text


def _width(width: Any) -> Any:
    if isinstance(width, int) and width > MAX_SEQUENCE_LENGTH:
        raise TooCostly("largeur de mise en forme trop grande")
    return width


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(exponent, int) and not isinstance(exponent, bool) and exponent > 0:
        if exponent > MAX_EXPONENT or _bits(base) * exponent > MAX_NUMBER_BITS:
            raise TooCostly("calcul trop grand (puissance)")


def _check_product(left: Any, right: Any) -> None:
    for sequence, times in ((left, right), (right, left)):
        size = _length(sequence)
        if size is not None and isinstance(times, int) and size * times > MAX_SEQUENCE_LENGTH:
            raise TooCostly(f"texte ou liste de plus de {MAX_SEQUENCE_LENGTH} éléments")
    if _bits(left) + _bits(right) > MAX_NUMBER_BITS:
        raise TooCostly("calcul trop grand (multiplication)")


@cache
def _environment() -> SandboxedEnvironment:
    return _MessageSandbox(
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
