"""An edited message cannot build a huge text in one call: each filter, function or method that
can outgrow its arguments (replace, lipsum, center, indent, wordwrap, str.format, printf, join,
urlize...) is bounded before it runs, and refused in French; the shipped texts and reasonable
edits render exactly as Jinja's own sandbox renders them."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from jinja2 import FileSystemLoader, StrictUndefined, meta
from jinja2.sandbox import SandboxedEnvironment
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Channel, MessageTemplate, Role, Territory, User
from notifications import templates
from notifications.templates import MessageTemplateError, render_message
from orientation.services.message_templates import preview, sample_context, shipped_templates
from tests.conftest import AuthActions

X1000 = "x" * 1000
X3000 = "x" * 3000

# Without its bound, each of these would build 2 to 60 MB (never gigabytes: a missing bound
# must fail the test, not the machine). Each writes only a length, so that nothing but the
# bound can refuse it.
HOSTILE = {
    "replace three times": (
        f'{{{{ "x"|replace("x", "{X1000}")|replace("x", "{X1000}")|replace("x", "{"x" * 30}")'
        "|length }}"
    ),
    "str.replace three times": (
        f'{{{{ "x".replace("x", "{X1000}").replace("x", "{X1000}").replace("x", "{"x" * 30}")'
        "|length }}"
    ),
    "lipsum, many paragraphs": "{{ lipsum(n=4000)|length }}",
    "lipsum, long paragraphs": "{{ lipsum(1, min=200000, max=200001)|length }}",
    "center": '{{ "a"|center(30000000)|length }}',
    "str.center": '{{ "a".center(30000000)|length }}',
    "str.ljust": '{{ "a".ljust(30000000)|length }}',
    "str.zfill": '{{ "1".zfill(30000000)|length }}',
    "indent, wide": '{{ "a\\nb\\nc\\nd"|indent(10000000)|length }}',
    "indent, by a long text": f'{{{{ ("a\\n" * 10000)|indent("{X3000}")|length }}}}',
    "wordwrap, long wrapstring": (
        f'{{{{ ("a " * 10000)|wordwrap(1, wrapstring="{X3000}")|length }}}}'
    ),
    "wordwrap, wide": '{{ "x"|wordwrap(1000000000)|length }}',
    "str.format, wide": '{{ "{:>30000000}".format("x")|length }}',
    "str.format, width given": '{{ "{:>{}}".format("x", 30000000)|length }}',
    "str.format, one value many times": (
        '{% set s = "x" * 10000 %}{{ ("{0}" * 3000).format(s)|length }}'
    ),
    "str.format_map": '{{ "{a:>30000000}".format_map({"a": "x"})|length }}',
    "format filter, wide": '{{ "%30000000s"|format("x")|length }}',
    "format filter, many fields": ('{{ ("%9000s" * 3000)|format(*(("x",) * 3000))|length }}'),
    "printf, many fields": '{{ (("%9000s" * 3000) % (("x",) * 3000))|length }}',
    "printf, one value many times": (
        '{% set s = "x" * 10000 %}{{ (("%(a)s" * 3000) % {"a": s})|length }}'
    ),
    "join of a long range": f'{{{{ range(30000)|join("{X1000}")|length }}}}',
    "str.join of a long range": (f'{{{{ "{X1000}".join(range(30000)|map("string"))|length }}}}'),
    "truncate, wide": '{{ "x"|truncate(1000000000)|length }}',
    "urlize, long rel": f'{{{{ ("a.fr " * 10000)|urlize(rel="{X3000}")|length }}}}',
    "list of a long text, as text": ('{% set s = "x" * 20000 %}{{ ([s] * 1500)|string|length }}'),
    "pretty-printed references": (
        '{% set s = "x" * 20000 %}'
        '{{ range(1500)|map(attribute="x", default=s)|list|pprint|length }}'
    ),
    "~ doubling": (
        '{% set ns = namespace(s="x" * 1000) %}{% for i in range(15) %}'
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "+ doubling": (
        '{% set ns = namespace(s="x" * 1000) %}{% for i in range(15) %}'
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "list.extend doubling": (
        "{% set l = [0] * 100 %}{% for i in range(15) %}{% set _ = l.extend(l) %}{% endfor %}"
        "{{ l|length }}"
    ),
    "many allowed texts at once": (
        '{{ range(1500)|map("string")|map("center", 20000)|list|length }}'
    ),
    "batch, filled up": '{{ [1]|batch(3000000, "x")|list|length }}',
    "tojson, indented": '{{ {"a": [1, 2, [3]]}|tojson(3000000)|length }}',
    "sum of lists": (
        "{% set l = [0] * 1000 %}"
        '{{ range(300)|map(attribute="x", default=l)|sum(start=[])|length }}'
    ),
    "str.expandtabs": '{{ "\\t".expandtabs(30000000)|length }}',
    "str.translate": f'{{{{ ("x" * 10000).translate({{120: "{X3000}"}})|length }}}}',
}

REFUSED = re.compile(
    r"modèle « doctor_reminder » : (texte ou liste de plus de 100000 éléments"
    r"|largeur de mise en forme trop grande|calcul trop grand)"
)


@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_call_that_would_build_a_huge_text_is_refused_in_french(body: str) -> None:
    with pytest.raises(MessageTemplateError) as refused:
        preview("doctor_reminder", Channel.SMS, body + " {{ link }}")
    assert REFUSED.match(str(refused.value)), refused.value


def test_the_editor_refuses_each_of_them_and_saves_nothing(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(make_territory(), Role.CPTS_ADMIN))
    for name, body in HOSTILE.items():
        response = client.post(
            "/espace/modeles/doctor_reminder/sms",
            data={"body": body + " {{ link }}", "action": "save"},
        )
        page = html.unescape(response.get_data(as_text=True))
        assert response.status_code != 302, name
        assert REFUSED.search(page), name
    assert session.scalars(select(MessageTemplate)).all() == []


# The same texts, rendered by Jinja's sandbox without the bounds.
PLAIN = SandboxedEnvironment(
    loader=FileSystemLoader(str(templates.MESSAGE_TEMPLATES)),
    autoescape=False,
    undefined=StrictUndefined,
    keep_trailing_newline=False,
    trim_blocks=True,
    lstrip_blocks=True,
)

DOCTORS = [
    {
        "name": f"Dr Camille Lefèvre-{i}",
        "address": f"{i} rue de la Gare, 59280 Armentières",
        "phone": "03 20 11 22 33",
        "distance": f"{i},5 km",
    }
    for i in range(1, 13)
]


def _contexts(key: str, channel: Channel) -> list[dict[str, Any]]:
    """Every variable given (flags true, one doctor and twelve), none (empty texts, flags
    false), and the editor's sample values."""
    names = meta.find_undeclared_variables(PLAIN.parse(templates.default_source(key, channel)))
    given: dict[str, Any] = {name: f"[{name} : valeur d'exemple]" for name in names}
    empty: dict[str, Any] = dict.fromkeys(names, "")
    contexts = [given, empty]
    if "doctors" in names:
        contexts = [{**c, "doctors": d} for c in contexts for d in (DOCTORS[:1], DOCTORS)]
    return [*contexts, sample_context(key, channel)]


@pytest.mark.parametrize(("key", "channel"), shipped_templates())
def test_every_shipped_text_renders_exactly_as_before(key: str, channel: Channel) -> None:
    name = f"{key}.{channel.value}.txt"
    for context in _contexts(key, channel):
        expected = PLAIN.get_template(name).render(**context)
        assert templates._environment().get_template(name).render(**context) == expected
        render_message(key, channel, context)  # and is no error once stripped and split


REASONABLE = [
    '{{ "{:>6}|{:<4}|{:.2f}|{:%}".format("ab", 7, 3.14159, 0.5) }}',
    '{{ "{name} ({distance})".format_map(doctors[0]) }}',
    '{{ "%s et %s" % ("Dr A", "Dr B") }} {{ "%05.1f"|format(3.14159) }} {{ "%(n)s"|format(n=3) }}',
    '{{ doctors|map(attribute="name")|join(", ") }} {{ doctors|sum(attribute="n") }}',
    '[{{ "ab"|center(6) }}] [{{ "a\\nb"|indent(2, first=true) }}] {{ "abc"|replace("b", "--") }}',
    '{{ "un texte à couper en lignes"|wordwrap(8) }} {{ "Bonjour Madame"|truncate(9, leeway=0) }}',
    '{{ "a b".replace(" ", "_").center(9, "*").ljust(10) }}|{{ "1".zfill(3) }}',
    '{% set ns = namespace(t="") %}{% for d in doctors %}{% set ns.t = ns.t ~ d.name ~ ";" %}'
    "{% endfor %}{{ ns.t }} {{ ns.t + '!' }}",
    '{{ ", ".join(["a", "b"]) }} {{ (["a"] * 3)|join("-") }} {{ ["a"] + ["b"] }} {{ [1, 2] }}',
    "{{ range(20000)|join|length }} {{ ('x' * 30000)|length }} {{ 'x'|center(30000)|length }}",
    "{{ (10**100)|filesizeformat|length < 100 }} {{ 123456789|filesizeformat }}",
    "{{ lipsum(2, html=false)|wordcount > 20 }} {{ 'https://example.org'|urlize }}",
    '{{ {"a": [1, 2]}|tojson }} {{ [3, 1, 2]|sort|list }} {{ "x"|truncate(1000) }}',
    '{{ ["ab", "cd"]|batch(1, "-")|list }} {{ [1, 2, 3]|slice(2)|list }}',
    '{{ "a\\tb|".expandtabs(4) }} {{ "ab".translate({97: "A"}) }}',
]


@pytest.mark.parametrize("body", REASONABLE)
def test_reasonable_edits_render_as_jinja_renders_them(body: str) -> None:
    context = {"doctors": [{**d, "n": i} for i, d in enumerate(DOCTORS[:3])]}
    expected = PLAIN.from_string(body).render(**context).strip()
    assert render_message("x", Channel.SMS, context, override=body).body == expected
