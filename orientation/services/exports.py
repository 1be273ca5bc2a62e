"""Exports of requests and of the message log, as CSV or XLSX, streamed row by row.

Rows come from a streamed query (`yield_per`: a server-side cursor on PostgreSQL) in batches,
and are written out as they arrive, so memory stays flat whatever the number of requests.
Every value that a spreadsheet could read as a formula is neutralised (CSV injection).
"""

from __future__ import annotations

import csv
import enum
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from sqlalchemy import Row, Select, func, select
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import Message, Person, Request, Source, Status
from orientation.services.audit import record
from orientation.services.contact import display_phone

BATCH = 1000
# Characters that make Excel or LibreOffice read a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


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
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def age_on(birth: date | None, day: date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


# Bands coarse enough not to identify anyone, fine enough for the priority criteria
# (under 6, 70 and over).
AGE_BANDS = ((0, 5, "0-5"), (6, 17, "6-17"), (18, 39, "18-39"), (40, 59, "40-59"),
             (60, 69, "60-69"), (70, 79, "70-79"), (80, 200, "80+"))  # fmt: skip


def age_band(age: int | None) -> str:
    if age is None:
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
REQUEST_COLUMNS = (
    Request.id, Request.reference, Request.created_at, Request.status, Request.source,
    Request.source_tag, Request.postal_code, Request.commune_insee, Request.street,
    Request.phone, Request.email, Request.is_priority, Request.css_ame,
    Request.need_home_visits, Request.reason, Request.closed_reason,
)  # fmt: skip


def _requests_query(territory_ids: Sequence[int], filters: ExportFilter) -> Select[Any]:
    query: Any = (
        select(*REQUEST_COLUMNS)
        .where(
            Request.territory_id.in_(territory_ids),
            Request.created_at >= filters.start,
            Request.created_at < filters.end,
        )
        .order_by(Request.id)
    )
    if filters.statuses:
        query = query.where(Request.status.in_(filters.statuses))
    if filters.sources:
        query = query.where(Request.source.in_(filters.sources))
    if filters.commune_insee:
        query = query.where(Request.commune_insee == filters.commune_insee)
    if filters.priority is PriorityFilter.PRIORITY:
        query = query.where(Request.is_priority.is_(True))
    elif filters.priority is PriorityFilter.NOT_PRIORITY:
        query = query.where(Request.is_priority.is_(False))
    return query


def _persons_of(session: Session, ids: list[int]) -> dict[int, list[Any]]:
    by_request: dict[int, list[Any]] = {i: [] for i in ids}
    for person in session.execute(
        select(
            Person.request_id, Person.first_name, Person.last_name, Person.birth_date, Person.ald
        )
        .where(Person.request_id.in_(ids))
        .order_by(Person.request_id, Person.position)
    ):
        by_request[person.request_id].append(person)
    return by_request


def _phone(e164: str) -> str:
    # The common case (a French number) without a phonenumbers parse per row: the export
    # of 100,000 requests spends most of its time here otherwise.
    if len(e164) == 12 and e164.startswith("+33") and e164[1:].isdigit():
        national = "0" + e164[3:]
        return " ".join(national[i : i + 2] for i in range(0, 10, 2))
    return display_phone(e164) if e164 else ""


def _yes(flag: bool) -> str:
    return "oui" if flag else "non"


def _commune_name(insee: str) -> str:
    commune = gazetteer().by_insee.get(insee) if insee else None
    return commune.name if commune else ""


def _request_row(request: Row[Any], persons: list[Any], pseudonymised: bool) -> list[object]:
    day = request.created_at.date()
    ages = [age_on(p.birth_date, day) for p in persons]
    elderly = any(a is not None and a >= 70 for a in ages)
    child = any(a is not None and a < 6 for a in ages)
    ald = any(p.ald for p in persons)
    common_end: list[object] = [
        _yes(request.is_priority), _yes(elderly), _yes(child), _yes(ald),
        _yes(request.css_ame), _yes(request.need_home_visits), request.reason.value,
    ]  # fmt: skip
    status = request.status.value
    if pseudonymised:
        return [
            request.id, day.isoformat(), status, request.source.value, request.postal_code,
            _commune_name(request.commune_insee), len(persons),
            ", ".join(age_band(a) for a in ages), *common_end,
        ]  # fmt: skip
    return [
        request.reference, request.created_at.isoformat(timespec="minutes"), status,
        request.source.value, request.source_tag, request.postal_code,
        _commune_name(request.commune_insee), request.street,
        _phone(request.phone), request.email, len(persons),
        ", ".join(f"{p.first_name} {p.last_name}" for p in persons),
        ", ".join(p.birth_date.isoformat() if p.birth_date else "" for p in persons),
        *common_end, request.closed_reason,
    ]  # fmt: skip


def request_rows(
    session: Session,
    territory_ids: Sequence[int],
    filters: ExportFilter,
    *,
    pseudonymised: bool = False,
) -> Iterator[list[object]]:
    """The header, then one row per request, read in batches from a streamed query."""
    yield list(PSEUDONYMISED_HEADER if pseudonymised else REQUEST_HEADER)
    result = session.execute(
        _requests_query(territory_ids, filters).execution_options(yield_per=BATCH)
    )
    for batch in result.partitions():
        persons = _persons_of(session, [r.id for r in batch])
        for request in batch:
            yield _request_row(request, persons[request.id], pseudonymised)


def message_rows(
    session: Session, territory_ids: Sequence[int], start: datetime, end: datetime
) -> Iterator[list[object]]:
    """The message log: channel, purpose, status and dates; never bodies nor recipients."""
    yield list(MESSAGE_HEADER)
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
            row.created_at.isoformat(timespec="minutes"), row.channel.value, row.purpose,
            row.status.value, row.attempts,
            row.sent_at.isoformat(timespec="minutes") if row.sent_at else "",
            row.delivered_at.isoformat(timespec="minutes") if row.delivered_at else "",
        ]  # fmt: skip


def count_requests(session: Session, territory_ids: Sequence[int], filters: ExportFilter) -> int:
    """How many requests the export will hold (for the page, and for the audit entry)."""
    query = _requests_query(territory_ids, filters).order_by(None)
    return session.scalar(select(func.count()).select_from(query.subquery())) or 0


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
    for n, row in enumerate(rows, start=1):
        writer.writerow([neutralise(v) for v in row])
        if n % BATCH == 0:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode("utf-8")


def write_xlsx(rows: Iterable[list[object]], target: Any, title: str = "Export") -> None:
    """An XLSX in openpyxl's write-only mode (rows go to a temporary file, not to memory)."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
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
