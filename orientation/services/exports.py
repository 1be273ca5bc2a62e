"""Exports of requests and of the message log, as CSV or XLSX, streamed row by row.

Rows come from a streamed query (`yield_per`: a server-side cursor on PostgreSQL) in batches,
and are written out as they arrive, so memory stays flat whatever the number of requests.
Every value that a spreadsheet could read as a formula is neutralised (CSV injection).
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, TypeVar

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Interval,
    Select,
    String,
    case,
    func,
    literal_column,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import Message, Person, Reason, Request, Source, Status
from orientation import labels
from orientation.services.audit import record
from orientation.services.contact import display_phone
from orientation.services.local_time import in_paris, paris_offsets
from orientation.services.sql_hints import unindexed_on_sqlite

BATCH = 1000
T = TypeVar("T")
# Characters that make Excel or LibreOffice read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Texts a spreadsheet shows as an error value rather than as the text typed.
ERROR_TEXTS = frozenset(ERROR_CODES)


class ExportFormat(enum.StrEnum):
    CSV = "csv"
    XLSX = "xlsx"


class ExportKind(enum.StrEnum):
    REQUESTS = "requests"
    PSEUDONYMISED = "pseudonymised"  # for partners: no names, no contact, age bands
    MESSAGES = "messages"


class PriorityFilter(enum.StrEnum):
    ANY = ""
    PRIORITY = "priority"
    NOT_PRIORITY = "not_priority"


@dataclass(frozen=True)
class ExportFilter:
    """What to export: requests created in [start, end) and matching every given criterion."""

    start: datetime
    end: datetime
    statuses: Sequence[Status] = field(default_factory=tuple)
    sources: Sequence[Source] = field(default_factory=tuple)
    commune_insee: str = ""
    priority: PriorityFilter = PriorityFilter.ANY

    def describe(self) -> dict[str, Any]:
        """The filter as plain values, for the audit trail."""
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "statuses": [s.value for s in self.statuses],
            "sources": [s.value for s in self.sources],
            "commune": self.commune_insee,
            "priority": self.priority.value,
        }


def neutralise(value: object) -> str:
    """A cell's text, prefixed with an apostrophe when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_PREFIXES) or text in ERROR_TEXTS:
        return "'" + text
    return text


# Bands coarse enough not to identify anyone, fine enough for the priority criteria
# (under 6, 70 and over).
AGE_BANDS = ((0, 5, "0-5"), (6, 17, "6-17"), (18, 39, "18-39"), (40, 59, "40-59"),
             (60, 69, "60-69"), (70, 79, "70-79"), (80, 200, "80+"))  # fmt: skip


def age_band(age: int | None) -> str:
    # A birth date after the request is a typing error: no band rather than a failed export.
    if age is None or age < 0:
        return "inconnu"
    return next(label for low, high, label in AGE_BANDS if low <= age <= high)


REQUEST_HEADER = [
    "référence", "date de la demande", "statut", "source", "origine", "code postal", "commune",
    "adresse", "téléphone", "e-mail", "personnes", "noms", "dates de naissance", "prioritaire",
    "70 ans et plus", "moins de 6 ans", "ALD", "CSS/AME", "visites à domicile", "motif",
    "clôture",
]  # fmt: skip
PSEUDONYMISED_HEADER = [
    "numéro", "date de la demande", "statut", "source", "code postal", "commune", "personnes",
    "tranches d'âge", "prioritaire", "70 ans et plus", "moins de 6 ans", "ALD", "CSS/AME",
    "visites à domicile", "motif",
]  # fmt: skip
MESSAGE_HEADER = ["date", "canal", "objet", "statut", "tentatives", "envoyé le", "reçu le"]


# Plain columns, not ORM objects: building 100,000 instances would take most of the time.
# The enums are read as the names stored (type_coerce to String) and turned into their French
# labels by a dict lookup (see _Lookups): SQLAlchemy's Enum processing then `.value` cost
# about half a second per 100,000 requests (three enums each, profiled).
# Dates come as text formatted by the database (see _paris_minute): no datetime object is
# parsed, made timezone-aware and formatted again for each of them.
def _labels_by_name(members: Iterable[enum.Enum], words: Mapping[Any, object]) -> dict[str, str]:
    """The French word of each member (orientation.labels, as the pages say it), by the name
    the database stores; resolved and made safe once per export, not per row."""
    return {member.name: neutralise(words[member]) for member in members}


@dataclass(frozen=True, slots=True)
class _Lookups:
    """What a request's row looks its codes up in: the pages' words, never the codes."""

    status: dict[str, str]
    source: dict[str, str]
    reason: dict[str, str]
    communes: dict[str, str]

    @classmethod
    def build(cls) -> _Lookups:
        return cls(
            status=_labels_by_name(Status, labels.STATUS_LABELS),
            source=_labels_by_name(Source, labels.SOURCE_LABELS),
            reason=_labels_by_name(Reason, labels.REASON_LABELS),
            communes={code: commune.name for code, commune in gazetteer().by_insee.items()},
        )


def _paris_minute(dialect: str, column: Any, start: datetime, end: datetime) -> ColumnElement[str]:
    """A UTC timestamp of [start, end) as Paris's clocks read it, with the offset
    ('YYYY-MM-DDTHH:MM+01:00'), formatted by the database.

    SQLite has no time-zone database: Paris's offsets over the period come from zoneinfo
    (local_time.paris_offsets, summer time included), one CASE branch per stretch of constant
    offset, the same on PostgreSQL so that both say the same. Timestamps of rows outside the
    period are never asked for."""
    offsets = paris_offsets(start, end)

    def formatted(offset: timedelta) -> ColumnElement[str]:
        seconds = int(offset.total_seconds())
        sign, minutes = "+" if seconds >= 0 else "-", abs(seconds) // 60
        label = literal_column(f"'{sign}{minutes // 60:02d}:{minutes % 60:02d}'", String)
        if dialect == "sqlite":  # stored as UTC text: 'YYYY-MM-DD HH:MM:SS.ffffff'
            shift = literal_column(f"'{seconds:+d} seconds'", String)
            return func.strftime("%Y-%m-%dT%H:%M", column, shift, type_=String) + label
        utc = func.timezone("UTC", column, type_=DateTime()) + literal_column(
            f"interval '{seconds} seconds'", Interval()
        )
        return func.to_char(utc, 'YYYY-MM-DD"T"HH24:MI', type_=String) + label

    if len(offsets) == 1:
        return formatted(offsets[0][1])
    branches = [
        (column < until, formatted(offset))
        for (_since, offset), (until, _then) in zip(offsets, offsets[1:], strict=False)
    ]
    return case(*branches, else_=formatted(offsets[-1][1]))


def _iso_date(dialect: str, column: Any) -> ColumnElement[str]:
    """A date as 'YYYY-MM-DD' text (None stays None), formatted by the database."""
    if dialect == "sqlite":  # stored as that very text
        return type_coerce(column, String)
    return func.to_char(column, "YYYY-MM-DD", type_=String)


def _request_columns(dialect: str, filters: ExportFilter) -> tuple[Any, ...]:
    created = _paris_minute(dialect, Request.created_at, filters.start, filters.end)
    return (
        Request.id, Request.reference, created,
        type_coerce(Request.status, String), type_coerce(Request.source, String),
        Request.source_tag, Request.postal_code, Request.commune_insee, Request.street,
        Request.phone, Request.email, Request.is_priority, Request.has_elderly, Request.has_child,
        Request.has_ald, Request.css_ame, Request.need_home_visits,
        type_coerce(Request.reason, String), Request.closed_reason,
    )  # fmt: skip


def _person_columns(dialect: str) -> tuple[Any, ...]:
    return (
        Person.request_id, Person.first_name, Person.last_name,
        _iso_date(dialect, Person.birth_date),
    )  # fmt: skip


def _request_conditions(
    territory_ids: Sequence[int], filters: ExportFilter, dialect: str, limited: bool = False
) -> list[Any]:
    """The requests an export holds; `limited`: those it leaves out (processing limited)."""
    created: Any = Request.created_at
    if dialect == "sqlite" and len(territory_ids) == 1:
        # A unary plus keeps SQLite from seeking the dates in ix_requests_reports and then
        # sorting every row by id: it reads ix_requests_territory_id, already in id order
        # (for a short period of a long history, it skips the other rows in that index).
        created = unindexed_on_sqlite(created)
    # RGPD art. 18: a request whose processing the patient limited is kept, not processed;
    # copying it into a spreadsheet (even pseudonymised) would be processing it.
    limitation = Request.processing_limited_at
    conditions = [
        Request.territory_id.in_(territory_ids),
        created >= filters.start,
        created < filters.end,
        limitation.is_not(None) if limited else limitation.is_(None),
    ]
    if filters.statuses:
        conditions.append(Request.status.in_(filters.statuses))
    if filters.sources:
        conditions.append(Request.source.in_(filters.sources))
    if filters.commune_insee:
        conditions.append(Request.commune_insee == filters.commune_insee)
    if filters.priority is PriorityFilter.PRIORITY:
        conditions.append(Request.is_priority.is_(True))
    elif filters.priority is PriorityFilter.NOT_PRIORITY:
        conditions.append(Request.is_priority.is_(False))
    return conditions


def _requests_query(
    territory_ids: Sequence[int], filters: ExportFilter, dialect: str
) -> Select[Any]:
    query: Any = select(*_request_columns(dialect, filters))
    conditions = _request_conditions(territory_ids, filters, dialect)
    return query.where(*conditions).order_by(Request.id)


def _persons_query(
    territory_ids: Sequence[int], filters: ExportFilter, dialect: str
) -> Select[Any]:
    """The persons of the same requests, in the same order (request id, then position)."""
    query: Any = select(*_person_columns(dialect))
    return (
        query.join(Request, Request.id == Person.request_id)
        .where(*_request_conditions(territory_ids, filters, dialect))
        .order_by(Person.request_id, Person.position)
    )


class Rows:
    """A table to export: the header, then batches of rows whose cells are already safe (every
    text a person typed is neutralised once, where it is read). Writers hand the batches on
    whole instead of looking at each of the two million cells of a large export again."""

    def __init__(self, header: Sequence[str], batches: Iterator[list[list[object]]]) -> None:
        self.header: list[object] = list(header)
        self.batches = batches

    def __iter__(self) -> Iterator[list[object]]:
        yield self.header
        for batch in self.batches:
            yield from batch


YES_NO = ("non", "oui")


def _french_phone(e164: str) -> str:
    # The common case (a French number) without a phonenumbers parse per row.
    if len(e164) == 12 and e164.startswith("+33") and e164[1:].isdigit():
        n = e164[3:]
        return f"0{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:9]}"
    return neutralise(display_phone(e164)) if e164 else ""


def _request_batches(
    session: Session, territory_ids: Sequence[int], filters: ExportFilter, pseudonymised: bool
) -> Iterator[list[list[object]]]:
    """Rows built from plain tuples of two streamed queries (server-side cursors on
    PostgreSQL) read side by side in the order of the requests' ids: the requests, and their
    persons. Labels are looked up once, not per row.

    The database is read one batch ahead, on a thread of its own (always the same one, so
    the connection is used by one thread at a time): while this thread builds and writes a
    batch, PostgreSQL works on the next one without our process waiting for it (about a
    tenth less time for a large export, measured; SQLite's reads hold the GIL, so there it
    gains little). Memory stays flat: one batch ahead at most."""
    connection = session.connection()
    dialect = connection.dialect.name
    lookups = _Lookups.build()
    streamed = {"yield_per": BATCH}
    requests = connection.execute(
        _requests_query(territory_ids, filters, dialect).execution_options(**streamed)
    )
    persons_query = _persons_query(territory_ids, filters, dialect)
    persons_result = connection.execute(persons_query.execution_options(**streamed))
    row = _pseudonymised_row if pseudonymised else _request_row
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-reader") as reader:
        # The persons' batches chained into one iterator: next() on it is mostly a C call.
        persons = chain.from_iterable(_read_ahead(reader, persons_result.partitions()))
        person = next(persons, None)
        for batch in _read_ahead(reader, requests.partitions()):
            rows = []
            for request in batch:
                rid = request[0]
                household = []
                while person is not None and person[0] == rid:
                    household.append(person)
                    person = next(persons, None)
                rows.append(row(request, household, lookups))
            yield rows


def _read_ahead(reader: ThreadPoolExecutor, batches: Iterator[T]) -> Iterator[T]:
    """The batches, the next one always being read by `reader` while this one is used."""
    ahead = reader.submit(next, batches, None)
    try:
        while (batch := ahead.result()) is not None:
            ahead = reader.submit(next, batches, None)
            yield batch
    finally:
        ahead.cancel()  # stopped early (a download cut short): no batch more is read


def _safe(text: str | None) -> str:
    """neutralise() for the texts of a row, with the common case (a harmless first character)
    decided without a call: an export makes several hundred thousand of these."""
    if not text:
        return ""
    return neutralise(text) if text[0] in _RISKY_FIRST else text


# The first characters that neutralise() may have to act on: the formula prefixes, and the
# "#" of the error values.
_RISKY_FIRST = frozenset("".join(FORMULA_PREFIXES) + "".join(code[0] for code in ERROR_TEXTS))


def _request_row(r: Sequence[Any], persons: Sequence[Any], words: _Lookups) -> list[object]:
    (_rid, reference, created_at, status, source, source_tag, postal_code, insee, street,
     phone, email, is_priority, elderly, child, ald, css_ame, home_visits, reason,
     closed_reason) = r  # fmt: skip
    # The criteria as stored with the request (services/household.py), as the indicators
    # count them, even after anonymisation has coarsened the birth dates.
    return [
        reference, created_at, words.status[status], words.source[source],
        _safe(source_tag), _safe(postal_code), words.communes.get(insee, ""), _safe(street),
        _french_phone(phone), _safe(email), len(persons), _safe(_names(persons)),
        _birth_dates(persons), YES_NO[is_priority], YES_NO[elderly], YES_NO[child],
        YES_NO[ald], YES_NO[css_ame], YES_NO[home_visits], words.reason[reason],
        _safe(closed_reason),
    ]  # fmt: skip


def _pseudonymised_row(r: Sequence[Any], persons: Sequence[Any], words: _Lookups) -> list[object]:
    (rid, _reference, created_at, status, source, _tag, postal_code, insee, _street,
     _phone, _email, is_priority, elderly, child, ald, css_ame, home_visits, reason,
     _closed) = r  # fmt: skip
    day = created_at[:10]
    return [
        rid, day, words.status[status], words.source[source], _safe(postal_code),
        words.communes.get(insee, ""), len(persons),
        ", ".join(age_band(None if p[3] is None else _age(p[3], day)) for p in persons),
        YES_NO[is_priority], YES_NO[elderly], YES_NO[child], YES_NO[ald], YES_NO[css_ame],
        YES_NO[home_visits], words.reason[reason],
    ]  # fmt: skip


def _age(born: str, day: str) -> int:
    """Whole years from one ISO date to another (as household.age_on), read off the texts:
    'MM-DD' texts compare as the dates do."""
    return int(day[:4]) - int(born[:4]) - (day[5:] < born[5:])


def _names(persons: Sequence[Any]) -> str:
    if len(persons) == 1:  # most households: no generator for one name
        return f"{persons[0][1]} {persons[0][2]}"
    return ", ".join(f"{p[1]} {p[2]}" for p in persons)


def _birth_dates(persons: Sequence[Any]) -> str:
    if len(persons) == 1:
        return persons[0][3] or ""
    return ", ".join(p[3] or "" for p in persons)


def request_rows(
    session: Session,
    territory_ids: Sequence[int],
    filters: ExportFilter,
    *,
    pseudonymised: bool = False,
) -> Rows:
    """The header, then one row per request, read in batches from a streamed query."""
    return Rows(
        PSEUDONYMISED_HEADER if pseudonymised else REQUEST_HEADER,
        _request_batches(session, territory_ids, filters, pseudonymised),
    )


def message_rows(
    session: Session, territory_ids: Sequence[int], start: datetime, end: datetime
) -> Iterator[list[object]]:
    """The message log: channel, purpose, status and dates; never bodies nor recipients."""
    yield list(MESSAGE_HEADER)
    # In the words of the outbox page (orientation.labels); a purpose without one stays as is.
    channels = {key: str(word) for key, word in labels.CHANNEL_LABELS.items()}
    purposes = {key: str(word) for key, word in labels.MESSAGE_PURPOSE_LABELS.items()}
    statuses = {key: str(word) for key, word in labels.MESSAGE_STATUS_LABELS.items()}
    query = (
        select(
            Message.created_at, Message.channel, Message.purpose, Message.status,
            Message.attempts, Message.sent_at, Message.delivered_at,
        )
        .where(
            Message.territory_id.in_(territory_ids),
            Message.created_at >= start,
            Message.created_at < end,
        )
        .order_by(Message.id)
        .execution_options(yield_per=BATCH)
    )  # fmt: skip
    for row in session.execute(query):
        yield [
            _paris_text(row.created_at), channels[row.channel],
            purposes.get(row.purpose, row.purpose), statuses[row.status], row.attempts,
            _paris_text(row.sent_at), _paris_text(row.delivered_at),
        ]  # fmt: skip


def _paris_text(moment: datetime | None) -> str:
    # The message log is a few thousand rows a year: converted here, as the pages do.
    return in_paris(moment).isoformat(timespec="minutes") if moment else ""


def count_requests(session: Session, territory_ids: Sequence[int], filters: ExportFilter) -> int:
    """How many requests the export will hold (for the page, and for the audit entry)."""
    dialect = session.get_bind().dialect.name
    query = _requests_query(territory_ids, filters, dialect).order_by(None)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


def count_limited(session: Session, territory_ids: Sequence[int], filters: ExportFilter) -> int:
    """How many requests would match but are left out: their processing is limited."""
    dialect = session.get_bind().dialect.name
    conditions = _request_conditions(territory_ids, filters, dialect, limited=True)
    return session.scalar(select(func.count()).select_from(Request).where(*conditions)) or 0


def count_messages(
    session: Session, territory_ids: Sequence[int], start: datetime, end: datetime
) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.territory_id.in_(territory_ids),
                Message.created_at >= start,
                Message.created_at < end,
            )
        )
        or 0
    )


def csv_chunks(rows: Iterable[list[object]]) -> Iterator[bytes]:
    """UTF-8 with BOM and semicolons, so French Excel opens it with accents and columns right."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    yield "\ufeff".encode()
    for batch in _safe_batches(rows):
        writer.writerows(batch)
        yield buffer.getvalue().encode("utf-8")
        buffer.seek(0)
        buffer.truncate()


def _safe_batches(rows: Iterable[list[object]]) -> Iterator[list[list[object]]]:
    """Batches of rows whose cells are safe: as they come for `Rows`, neutralised otherwise."""
    if isinstance(rows, Rows):
        yield [rows.header]
        yield from rows.batches
        return
    batch: list[list[object]] = []
    for row in rows:
        batch.append([neutralise(v) for v in row])
        if len(batch) == BATCH:
            yield batch
            batch = []
    yield batch


def write_xlsx(rows: Iterable[list[object]], target: Any, title: str = "Export") -> None:
    """An XLSX in openpyxl's write-only mode (rows go to a temporary file, not to memory).

    openpyxl spends about ten microseconds per cell whatever we do (lxml, a dependency, halves
    its XML writing): an XLSX of 100,000 requests takes several times as long as the CSV."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    if isinstance(rows, Rows):
        # Safe cells: plain values go in as they are (openpyxl makes a formula only of a text
        # starting with "=", which neutralise() has prefixed), bar the few error-code texts.
        # An empty text is left out (None): openpyxl skips the cell, which reads back the same.
        sheet.append(rows.header)
        for batch in rows.batches:
            for row in batch:
                sheet.append([None if value == "" else value for value in row])
        workbook.save(target)
        return
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, int) and not isinstance(value, bool):
                cells.append(WriteOnlyCell(sheet, value=value))
                continue
            cell = WriteOnlyCell(sheet, value=neutralise(value))
            cell.data_type = "s"  # never a formula, whatever the text
            cells.append(cell)
        sheet.append(cells)
    workbook.save(target)


def audit_export(
    session: Session,
    *,
    kind: ExportKind,
    fmt: ExportFormat,
    territory_id: int | None,
    user_id: int | None,
    rows: int,
    filter_details: dict[str, Any],
    ip: str = "",
    now: datetime,
) -> None:
    """Record who exported what, when, with which filter and how many rows; commits."""
    record(
        session,
        "export",
        territory_id=territory_id,
        user_id=user_id,
        object_type=kind.value,
        ip=ip,
        format=fmt.value,
        rows=rows,
        filter=filter_details,
        at=now.isoformat(),
    )
    session.commit()


__all__ = [
    "ExportFilter",
    "ExportFormat",
    "ExportKind",
    "PriorityFilter",
    "count_messages",
    "count_requests",
    "audit_export",
    "csv_chunks",
    "message_rows",
    "neutralise",
    "request_rows",
    "write_xlsx",
]
