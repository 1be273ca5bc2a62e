"""Creating a CPTS and reading its communes."""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer, normalise_name
from models import Territory, TerritoryCommune


class TerritoryError(ValueError):
    """A territory cannot be created as asked; the message says why."""


class UnknownCommunes(TerritoryError):
    def __init__(self, codes: list[str]) -> None:
        super().__init__(f"unknown INSEE code(s): {', '.join(codes)}")
        self.codes = codes


def slugify(name: str) -> str:
    """'CPTS Lys-Armentières' -> 'cpts-lys-armentieres'."""
    text = unicodedata.normalize("NFKD", name.lower().replace("œ", "oe"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:80]


def parse_insee_codes(text: str) -> list[str]:
    """INSEE codes from inline text ('59017,59431 59143') or a CSV (column insee, or the first)."""
    stripped = text.lstrip("\ufeff").strip()
    first_line = stripped.splitlines()[0] if stripped else ""
    if any(sep in first_line for sep in (";", ",")) and re.search(r"[A-Za-z]{3}", first_line):
        dialect = csv.Sniffer().sniff(first_line, delimiters=",;")
        reader = csv.DictReader(io.StringIO(stripped), dialect=dialect)
        header = reader.fieldnames or []
        column = next(
            (h for h in header if h.strip().lower() in ("insee", "code_insee", "code")), header[0]
        )
        values = [row[column] for row in reader]
    elif re.search(r"[A-Za-z]{3}", first_line):  # one-column file with a header
        values = stripped.splitlines()[1:]
    else:
        values = re.split(r"[\s,;]+", stripped)
    codes = []
    for value in values:
        code = (value or "").strip()
        if code and code not in codes:
            codes.append(code)
    return codes


@dataclass(frozen=True)
class TerritoryInput:
    name: str
    insee_codes: list[str]
    slug: str = ""
    contact_phone: str = ""
    contact_email: str = ""
    dpo_contact: str = ""


def add_territory(session: Session, gazetteer: Gazetteer, data: TerritoryInput) -> Territory:
    """Create a CPTS with its communes; every code must be a known commune."""
    name = data.name.strip()
    if not name:
        raise TerritoryError("a territory needs a name")
    if not data.insee_codes:
        raise TerritoryError("a territory needs at least one commune (INSEE code)")
    unknown = [code for code in data.insee_codes if gazetteer.get(code) is None]
    if unknown:
        raise UnknownCommunes(unknown)
    slug = slugify(data.slug or name)
    if not slug:
        raise TerritoryError("the name gives an empty slug: choose a slug")
    if session.scalar(select(Territory.id).where(Territory.slug == slug)) is not None:
        raise TerritoryError(f"a territory with the slug {slug!r} already exists")
    # Two CPTS of one name could not be told apart in lists, forwarding offers and reports.
    if any(slugify(other) == slugify(name) for other in session.scalars(select(Territory.name))):
        raise TerritoryError(f"a territory named {name!r} already exists")
    territory = Territory(
        name=name,
        slug=slug,
        contact_phone=data.contact_phone,
        contact_email=data.contact_email,
        dpo_contact=data.dpo_contact,
        communes=[TerritoryCommune(insee=code) for code in sorted(set(data.insee_codes))],
    )
    session.add(territory)
    session.flush()
    return territory


def territories_covering(session: Session, insee: str) -> list[Territory]:
    """The hosted territories that include a commune (to point a patient elsewhere)."""
    return list(
        session.scalars(
            select(Territory)
            .join(TerritoryCommune)
            .where(TerritoryCommune.insee == insee)
            .order_by(Territory.name)
        )
    )


def communes_by_name(gazetteer: Gazetteer, territory: Territory) -> list[tuple[str, str]]:
    """The CPTS's communes as (INSEE code, name), in the order people read names (accents
    folded: Pérenchies before Prémesques), for the filters that offer them."""
    names = gazetteer.by_insee
    known = [(code, names[code].name) for code in territory.insee_codes if code in names]
    return sorted(known, key=lambda c: normalise_name(c[1]))


def shared_communes(session: Session, territory: Territory) -> dict[str, list[str]]:
    """The other hosted CPTS that also hold some of this one's communes, with those INSEE
    codes: a commune in two territories makes "which CPTS covers it" ambiguous."""
    own = select(TerritoryCommune.insee).where(TerritoryCommune.territory_id == territory.id)
    shared: dict[str, list[str]] = {}
    for name, insee in session.execute(
        select(Territory.name, TerritoryCommune.insee)
        .join(TerritoryCommune)
        .where(Territory.id != territory.id, TerritoryCommune.insee.in_(own))
        .order_by(Territory.name, TerritoryCommune.insee)
    ):
        shared.setdefault(name, []).append(insee)
    return shared


def all_territories(session: Session) -> Iterable[Territory]:
    return session.scalars(select(Territory).order_by(Territory.name))
