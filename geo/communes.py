"""The reference gazetteer of communes, shipped in geo/data, with name matching as people type."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
COMMUNES_CSV = DATA_DIR / "communes.csv"
CONTOURS_GEOJSON = DATA_DIR / "communes.geojson"

_REQUIRED_COLUMNS = {"insee", "name", "departement", "postal_codes", "population", "lat", "lon"}


class ReferenceDataError(Exception):
    """The shipped reference file is missing or corrupt."""


@dataclass(frozen=True, slots=True)
class CommuneRecord:
    insee: str
    name: str
    departement: str
    postal_codes: tuple[str, ...]
    population: int
    lat: float
    lon: float


def normalise_name(name: str) -> str:
    """Fold a commune name as people type it: case, accents, ligatures, hyphens, 'St' for Saint.

    'Cœuvres', 'coeuvres' and 'COEUVRES' match; so do "La Chapelle-d'Armentières" and
    'la chapelle d armentieres', 'St-Omer' and 'Saint Omer'.
    """
    text = name.strip().lower().replace("œ", "oe").replace("æ", "ae")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = re.sub(r"[\s\-'’`.,]+", " ", text).strip()
    text = re.sub(r"\bste\b", "sainte", text)
    text = re.sub(r"\bst\b", "saint", text)
    return text


class Gazetteer:
    """Communes by INSEE code and by postal code."""

    def __init__(self, records: Iterable[CommuneRecord]) -> None:
        self.by_insee: dict[str, CommuneRecord] = {}
        self.by_postal_code: dict[str, list[CommuneRecord]] = {}
        self._by_name: dict[str, list[CommuneRecord]] = {}
        for record in records:
            self.by_insee[record.insee] = record
            for code in record.postal_codes:
                self.by_postal_code.setdefault(code, []).append(record)
            self._by_name.setdefault(normalise_name(record.name), []).append(record)
        for communes in self.by_postal_code.values():
            communes.sort(key=lambda c: c.name)

    def __len__(self) -> int:
        return len(self.by_insee)

    def get(self, insee: str) -> CommuneRecord | None:
        return self.by_insee.get(insee)

    def communes_of_postal_code(self, postal_code: str) -> list[CommuneRecord]:
        return list(self.by_postal_code.get(postal_code.strip(), ()))

    def find(self, postal_code: str, name: str) -> CommuneRecord | None:
        """The commune of that postal code whose name matches, however it was typed."""
        wanted = normalise_name(name)
        for commune in self.communes_of_postal_code(postal_code):
            if normalise_name(commune.name) == wanted:
                return commune
        return None

    def by_name(self, name: str) -> list[CommuneRecord]:
        return list(self._by_name.get(normalise_name(name), ()))


def read_communes(path: Path = COMMUNES_CSV) -> list[CommuneRecord]:
    """Parse the reference CSV; raise ReferenceDataError naming the file and line if corrupt."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ReferenceDataError(f"cannot read the communes file {path}: {exc.strerror}") from None
    records: list[CommuneRecord] = []
    with handle:
        reader = csv.DictReader(handle)
        missing = _REQUIRED_COLUMNS - set(reader.fieldnames or ())
        if missing:
            raise ReferenceDataError(
                f"the communes file {path} lacks the columns {', '.join(sorted(missing))}"
            )
        try:
            for row in reader:
                insee = row["insee"]
                if not re.fullmatch(r"\d[\dAB]\d{3}", insee or ""):
                    raise ValueError(f"bad INSEE code {insee!r}")
                records.append(
                    CommuneRecord(
                        insee=insee,
                        name=row["name"],
                        departement=row["departement"],
                        postal_codes=tuple(row["postal_codes"].split(";")),
                        population=int(row["population"]),
                        lat=float(row["lat"]),
                        lon=float(row["lon"]),
                    )
                )
        except (ValueError, TypeError, AttributeError) as exc:
            raise ReferenceDataError(
                f"the communes file {path} is corrupt at line {reader.line_num}: {exc}"
            ) from None
    if not records:
        raise ReferenceDataError(f"the communes file {path} is empty")
    return records


@cache
def gazetteer() -> Gazetteer:
    """The shipped gazetteer, read once per process (about 20 ms)."""
    return Gazetteer(read_communes())
