"""The sandbox message templates are rendered in: Jinja's SandboxedEnvironment guards
attributes, not cost, so this one also bounds what an edited text may compute (numbers, texts
and lists built, loop turns and calls, time), refusing with TooCostly, in French, before a
costly value is built wherever its size can be told from the arguments.
"""

from __future__ import annotations

import functools
import re
import string
import time
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, cast

from jinja2 import (
    Template,
    nodes,
    pass_eval_context,
)
from jinja2.compiler import CodeGenerator, Frame
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import Namespace

# Bounds on what an edited text may compute. Jinja's sandbox guards attributes, not cost:
# `{{ 7 ** (3 * 10 ** 7) }}` held a worker for its whole timeout, `"a" * 10 ** 8` built 100 MB.
MAX_RENDERED_LENGTH = 20_000  # characters of a rendered message (subject and body)
# One filter or method call can also build a gigabyte before anything is written: three
# `|replace("x", <1,000 x>)` in a row, `lipsum(n=10**6)`, `"{:>999999999}".format(x)`. What a
# call may build is bounded before it runs, estimated from its arguments. A text built on the
# way may be longer than the message it serves (`range(20000)|join` is 88,890 characters):
MAX_SEQUENCE_LENGTH = 5 * MAX_RENDERED_LENGTH  # characters of one text or list built
MAX_BUILT_LENGTH = 10 * MAX_SEQUENCE_LENGTH  # of all the texts built in one rendering
MAX_NUMBER_BITS = 4096  # about 1,200 digits: far beyond any real message
MAX_EXPONENT = 1024
# Loops and calls can cost time without writing anything: two nested loops over range(10000)
# held a worker until its timeout. A message goes through a few dozen steps (the proposal lists
# a handful of doctors); 100,000 empty steps take a few hundredths of a second.
MAX_STEPS = 100_000  # loop turns and calls (macros, functions) in one rendering
MAX_RENDER_SECONDS = 1.0  # also stops a loop of costly filters before the worker's timeout
_PRINTF_WIDTH = re.compile(r"%[^a-zA-Z%]*(\*|\d{5})")  # "%*d", "%99999s": a huge padding
_PRINTF_FIELD = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d*)(?:\.(\d*))?[hlL]?([a-zA-Z%])")
_NUMBER = re.compile(r"\d+")
_FIXED_POINT_DIGITS = 320  # "%f" or "{:f}" of 1e308 writes 309 digits and 6 decimals
_TOO_LONG = f"texte ou liste de plus de {MAX_SEQUENCE_LENGTH} éléments"
_MESSAGE_TOO_LONG = f"le message obtenu dépasse {MAX_RENDERED_LENGTH} caractères"


class TooCostly(SecurityError):
    """An edited text asks for a computation or an output out of proportion (said in French)."""


@dataclass
class _Budget:
    """The steps, time and built text left to the rendering under way."""

    deadline: float = field(default_factory=lambda: time.monotonic() + MAX_RENDER_SECONDS)
    steps: int = 0
    built: int = 0

    def spend(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise TooCostly(f"calcul trop long (plus de {MAX_STEPS} tours de boucle ou appels)")
        if time.monotonic() > self.deadline:
            raise TooCostly(f"calcul trop long (plus de {MAX_RENDER_SECONDS:g} s)")

    def build(self, size: int) -> None:
        # Each value has its bound; this one is for many of them: a loop or a `map` building
        # texts of 100,000 characters, each allowed, would hold them all at once.
        self.built += size
        if self.built > MAX_BUILT_LENGTH:
            raise TooCostly(f"calcul trop grand (plus de {MAX_BUILT_LENGTH} caractères produits)")


# One budget per rendering, in this thread (set by _BudgetedTemplate.render).
_BUDGET: ContextVar[_Budget | None] = ContextVar("message_template_budget", default=None)


def _spend() -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.spend()


def _count_built(size: int) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.build(size)


def _build(size: int) -> None:
    """A text or list of about `size` characters is about to be built (or just was)."""
    if size > MAX_SEQUENCE_LENGTH:
        raise TooCostly(_TOO_LONG)
    _count_built(size)


class _BudgetedTemplate(Template):
    """A template whose rendering has a budget; templates it includes share it."""

    def render(self, *args: Any, **kwargs: Any) -> str:
        token = _BUDGET.set(_Budget())
        try:
            return super().render(*args, **kwargs)
        finally:
            _BUDGET.reset(token)


class _CountingCodeGenerator(CodeGenerator):
    """Compiles every `{% for %}` to iterate through the sandbox's counted_loop, and every `~`
    to check its parts before they are joined.

    Jinja's sandbox has a hook for calls and operators, none for a loop's turns or `~`: an
    empty loop calls nothing, `s ~ s` doubles a text without a call. The code they compile to
    is changed instead (code_generator_class is Jinja's documented way to change the code a
    template compiles to)."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        node.iter = nodes.Call(
            nodes.EnvironmentAttribute("counted_loop"), [node.iter], [], None, None
        )
        super().visit_For(node, frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        # Jinja's own, with the parts going through joinable.
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"{join}(environment.joinable((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write(")))")


def _bits(value: Any) -> int:
    return abs(value).bit_length() if isinstance(value, int) else 0


def _text_size(value: Any, limit: int = MAX_SEQUENCE_LENGTH, depth: int = 0) -> int:
    """About len(str(value)), counted without building it and only until it passes `limit`.

    A list holding one long text 20,000 times is small in memory; turned into text (written,
    joined, formatted, pretty-printed with its nesting indented) it is gigabytes. Objects given
    to the template (a doctor) and lazy sequences count for nothing: they are not built here."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, int | float):  # a number of thousands of digits is not written out
        return len(repr(value)) if _bits(value) < 1024 else _bits(value) * 3 // 10
    if isinstance(value, Namespace):  # written as its dict
        value = object.__getattribute__(value, "_Namespace__attrs")
    parts: Iterable[Any]
    if isinstance(value, Mapping):
        parts = chain.from_iterable(value.items())
    elif isinstance(value, list | tuple | set | frozenset | KeysView | ValuesView | ItemsView):
        parts = value
    else:
        return 0
    if depth > 100:  # no message nests so deep; a list holding itself would never end
        return limit + 1
    size = 2
    for part in parts:
        if size > limit:
            break
        size += _text_size(part, limit - size, depth + 1) + 2 + depth
    return size


def _checked_texts(values: Iterable[Any]) -> None:
    for value in values:
        if _text_size(value) > MAX_SEQUENCE_LENGTH:
            raise TooCostly(_TOO_LONG)


def _taken(items: Iterable[Any], measure: Callable[[Any], int]) -> Iterator[Any]:
    """The items of a join or a sum, each a step, refused as soon as what they add up to passes
    the bound, before the joined text (`range(100000)|join(long_text)`) or list is built."""
    size = 0
    for item in items:
        _spend()
        size += measure(item)
        if size > MAX_SEQUENCE_LENGTH:
            raise TooCostly(_TOO_LONG)
        yield item
    _count_built(size)


def _counted_items(items: Iterator[Any]) -> Iterator[Any]:
    """What a lazy filter (map, batch, select...) yields, counted as it comes."""
    for item in items:
        _build(_text_size(item))
        yield item


def _bounded(function: Callable[..., Any], size: Callable[..., int] | None) -> Callable[..., Any]:
    """A filter or a function of the templates, bounded: it is a step, its arguments are no
    longer than a text may be, the length of its result is estimated by `size` (given the same
    arguments) before it runs when it can outgrow them, and what it returns is counted."""
    passed = 1 if hasattr(function, "jinja_pass_arg") else 0  # environment or context first

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _spend()
        own = args[passed:]
        _checked_texts(chain(own, kwargs.values()))
        if size is not None:
            _build(size(*own, **kwargs))
        result = function(*args, **kwargs)
        if isinstance(result, Iterator):
            return _counted_items(result)
        if size is None:
            _build(_text_size(result))
        return result

    return bounded


def _counted(test: Callable[..., Any]) -> Callable[..., Any]:
    """A test is a step: `range(10**5)|select("in", long_list)` compares for minutes."""

    @functools.wraps(test)
    def counted(*args: Any, **kwargs: Any) -> Any:
        _spend()
        return test(*args, **kwargs)

    return counted


class MessageSandbox(SandboxedEnvironment):
    """The sandbox, with what can be made expensive checked before it runs: arithmetic, the
    filters, functions and methods that build texts, and what is written.

    Intercepted operators are also never folded at compile time (nor is anything else, with
    optimized=False and a finalize that needs the rendering), so saving a text cannot hang.
    """

    intercepted_binops = frozenset({"**", "*", "%", "+"})
    code_generator_class = _CountingCodeGenerator
    template_class = _BudgetedTemplate

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_written_value, **options)
        filters = dict(self.filters)
        filters["join"] = _join_bounded(filters["join"])
        filters["sum"] = _sum_bounded(filters["sum"])
        self.filters = {name: _bounded(f, _FILTER_SIZES.get(name)) for name, f in filters.items()}
        self.tests = {name: _counted(cast(Callable[..., Any], t)) for name, t in self.tests.items()}
        self.globals["lipsum"] = _bounded(
            cast(Callable[..., Any], self.globals["lipsum"]), _lipsum_size
        )

    # Jinja's own signature: the double underscores keep a template's keyword argument named
    # `context` or `obj` from clashing with these.
    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call counts: a macro calling itself twice, forty deep, writes nothing either.

        A text's methods that build (replace, center, join...) are bounded before they run; a
        list or dict grown in place (`l.extend(l)` doubles it) is bounded after each call."""
        _spend()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            name = getattr(__obj, "__name__", "")
            if name == "join" and args:
                separator = len(owner)
                args = (_taken(args[0], lambda item: _text_size(item) + separator), *args[1:])
            elif name in _STR_METHOD_SIZES:
                _build(_STR_METHOD_SIZES[name](owner, *args, **kwargs))
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(owner, list | dict | set) and _text_size(owner) > MAX_SEQUENCE_LENGTH:
            raise TooCostly(_TOO_LONG)
        _build(_text_size(result))
        return result

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # A message is text: bytes would bring a second `%`, center, replace... to bound.
        return attr != "encode" and super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and format_map, bounded by what they may write (see _format_size)."""
        format_ = super().wrap_str_format(value)
        if format_ is None:
            return None
        text: str = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            _build(_format_size(text, [*args, *kwargs.values()]))
            return format_(*args, **kwargs)

        return functools.update_wrapper(bounded, format_)

    def counted_loop(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """The turns of a template's loop, each counted (see _CountingCodeGenerator)."""
        for item in iterable:
            _spend()
            yield item

    def joinable(self, parts: tuple[Any, ...]) -> tuple[Any, ...]:
        """The parts of `a ~ b ~ ...`, checked before they are joined (_CountingCodeGenerator)."""
        size = 0
        for part in parts:
            size += _text_size(part, MAX_SEQUENCE_LENGTH - size)
        _build(size)
        return parts

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            _check_power(left, right)
        elif operator_ == "*":
            _check_product(left, right)
        elif operator_ == "%" and isinstance(left, str):
            _build(_printf_size(left, right))
        elif operator_ == "+" and not isinstance(left, int | float):
            _build(_text_size(left) + _text_size(right))  # `s + s`, again and again
        return super().call_binop(context, operator_, left, right)

    def concat(self, chunks: Iterable[str]) -> str:
        """Join the output, stopping as soon as it is longer than a message can be (a loop
        writing without end stops here too, not at the worker's timeout)."""
        parts: list[str] = []
        total = 0
        for chunk in chunks:
            total += len(chunk)
            if total > MAX_RENDERED_LENGTH:
                raise TooCostly(_MESSAGE_TOO_LONG)
            parts.append(chunk)
        return "".join(parts)


@pass_eval_context
def _written_value(_eval_ctx: EvalContext, value: Any) -> Any:
    """The finalize of every `{{ value }}`, checked before it is turned into text (a list
    holding a long text 1,000 times). Taking the evaluation context, it runs only when
    rendering: Jinja then computes no `{{ }}` of constants while compiling, out of any budget."""
    if _text_size(value, MAX_RENDERED_LENGTH) > MAX_RENDERED_LENGTH:
        raise TooCostly(_MESSAGE_TOO_LONG)
    return value


def _printf(text: str) -> str:
    if _PRINTF_WIDTH.search(text):
        raise TooCostly("largeur de mise en forme trop grande")
    return text


def _width(width: Any) -> Any:
    if isinstance(width, int) and width > MAX_SEQUENCE_LENGTH:
        raise TooCostly("largeur de mise en forme trop grande")
    return width


# What a builder may write, estimated from its arguments before it runs. Each takes the
# arguments of the filter or method it bounds (any it does not name, in *_), and lets the call
# itself fail on arguments of the wrong type. Filters that cannot outgrow their input by more
# than a few times (upper, escape, urlencode...) are only counted afterwards.


def _printf_size(text: str, values: Any) -> int:
    """`text % values`: each field may write the longest value (one value of a mapping can be
    written by every field), padded to its width and precision."""
    _printf(text)  # no width from the values (`%*d`), none of five digits
    if isinstance(values, Mapping):
        values = tuple(values.values())
    longest = max(map(_text_size, values if isinstance(values, tuple) else (values,)), default=0)
    size = len(text)
    for width, precision, kind in _PRINTF_FIELD.findall(text):
        if kind != "%":
            size += longest + int(width or 0) + int(precision or 0)
            size += _FIXED_POINT_DIGITS if kind in "fF" else 0
    return size


def _format_size(text: str, values: list[Any]) -> int:
    """`text.format(...)` or format_map: each field may write the longest value, padded to the
    numbers of its spec, or to the numbers given when the spec takes them (`{:>{}}`)."""
    longest = max(map(_text_size, values), default=0)
    given = sum(_width(v) for v in values if isinstance(v, int) and v > 0)
    size = 0
    for literal, name, spec, _conversion in string.Formatter().parse(text):
        size += len(literal)
        if name is not None:
            spec = spec or ""
            # At most 7 digits are read: more is refused anyway, and int() of 4,301 fails.
            widths = (_width(int(n.lstrip("0")[:7] or "0")) for n in _NUMBER.findall(spec))
            size += longest + sum(widths) + (given if "{" in spec else 0)
            size += _FIXED_POINT_DIGITS if spec[-1:] in ("f", "F", "%") else 0
    return size


def _replaced_size(s: Any, old: Any, new: Any, count: Any = None, *_: Any) -> int:
    text, old, new = str(s), str(old), str(new)
    times = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        times = min(times, count)
    return len(text) + times * (len(new) - len(old))


def _padded_size(s: Any, width: Any = 80, *_: Any) -> int:
    return max(len(str(s)), _width(width))


def _indented_size(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    text = str(s)
    prefix = len(width) if isinstance(width, str) else _width(width)
    return len(text) + (len(text.splitlines()) + 1) * prefix


def _wrapped_size(
    s: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    break_on_hyphens: Any = True,
) -> int:
    # A line ends at a line break, at a word, or every `width` characters of a long word.
    text = str(s)
    lines = len(text.splitlines()) + len(text.split()) + len(text) // max(_width(width), 1)
    return len(text) + lines * len("\r\n" if wrapstring is None else str(wrapstring))


def _truncated_size(
    s: Any, length: Any = 255, killwords: Any = False, end: Any = "...", leeway: Any = None
) -> int:
    _width(length)
    _width(leeway)
    return len(str(s)) + len(str(end))


def _urlized_size(
    value: Any,
    trim_url_limit: Any = None,
    nofollow: Any = False,
    target: Any = None,
    rel: Any = None,
    *_: Any,
    **__: Any,
) -> int:
    # Each word may become a link repeating it and bearing `rel` and `target`.
    text = str(value)
    per_link = len(str(target or "")) + len(str(rel or "")) + 40
    return 3 * len(text) + len(text.split()) * per_link


def _batch_size(value: Any, linecount: Any, fill_with: Any = None) -> int:
    _width(linecount)  # the last line is filled up to `linecount` items
    return 0


def _slice_size(value: Any, slices: Any, fill_with: Any = None) -> int:
    _width(slices)  # as many lists
    return 0


def _json_size(value: Any, indent: Any = None) -> int:
    step = len(indent) if isinstance(indent, str) else _width(indent or 0)
    return _text_size(value) * (1 + step)


def _lipsum_size(n: Any = 5, html: Any = True, min: Any = 20, max: Any = 100) -> int:
    # n paragraphs of fewer than `max` words, of 12 letters at most, with space and punctuation.
    _width(min)
    return _width(n) * (15 * _width(max) + 10)


def _tabs_size(s: str, tabsize: Any = 8) -> int:
    return len(s) + s.count("\t") * _width(tabsize)


def _translated_size(s: str, table: Any = None, *_: Any) -> int:
    if not isinstance(table, Mapping):
        return len(s)
    return len(s) * max((len(v) for v in table.values() if isinstance(v, str)), default=1)


_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "replace": _replaced_size,
    "center": _padded_size,
    "indent": _indented_size,
    "wordwrap": _wrapped_size,
    "truncate": _truncated_size,
    "urlize": _urlized_size,
    "format": lambda value, *args, **kwargs: _printf_size(str(value), kwargs or args),
    "batch": _batch_size,
    "slice": _slice_size,
    "tojson": _json_size,
}

_STR_METHOD_SIZES: dict[str, Callable[..., int]] = {
    "replace": _replaced_size,
    "center": _padded_size,
    "ljust": _padded_size,
    "rjust": _padded_size,
    "zfill": _padded_size,
    "expandtabs": _tabs_size,
    "translate": _translated_size,
}


def _join_bounded(join: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(join)
    def bounded(eval_ctx: EvalContext, value: Any, d: Any = "", attribute: Any = None) -> Any:
        separator = len(str(d))
        items = _taken(value, lambda item: _text_size(item) + separator)
        return join(eval_ctx, items, d, attribute)

    return bounded


def _sum_bounded(sum_: Callable[..., Any]) -> Callable[..., Any]:
    # Numbers add up; lists (`start=[]`) are put end to end, and copied at each item.
    @functools.wraps(sum_)
    def bounded(environment: Any, iterable: Any, attribute: Any = None, start: Any = 0) -> Any:
        items = _taken(iterable, lambda i: 0 if isinstance(i, int | float) else _text_size(i))
        return sum_(environment, items, attribute, start)

    return bounded


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(exponent, int) and not isinstance(exponent, bool) and exponent > 0:
        if exponent > MAX_EXPONENT or _bits(base) * exponent > MAX_NUMBER_BITS:
            raise TooCostly("calcul trop grand (puissance)")


def _check_product(left: Any, right: Any) -> None:
    for sequence, times in ((left, right), (right, left)):
        if isinstance(sequence, str | list | tuple) and isinstance(times, int):
            if _text_size(sequence) * times > MAX_SEQUENCE_LENGTH:
                raise TooCostly(_TOO_LONG)
    if _bits(left) + _bits(right) > MAX_NUMBER_BITS:
        raise TooCostly("calcul trop grand (multiplication)")
