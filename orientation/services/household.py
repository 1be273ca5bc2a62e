"""What the queue and the indicators need of a household, stored on the request when written.

The priority criteria (70 and over, under 6, ALD; with CSS/AME, DESIGN.md) are taken at the
date of the request and stored with it, so that the indicators count columns instead of
grouping persons, and so that a later anonymisation, which coarsens birth dates to the year,
does not change what was counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from models import Request


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True)
class Household:
    persons: int
    elderly: bool  # someone 70 or over
    child: bool  # someone under 6
    ald: bool  # someone with an affection de longue durée

    @classmethod
    def of(cls, persons: Iterable[tuple[date | None, bool]], day: date) -> Household:
        """From (birth date, ALD) pairs, ages at `day`; an unknown birth date counts for none."""
        members = list(persons)
        ages = [age_on(born, day) for born, _ald in members if born is not None]
        return cls(
            persons=len(members),
            elderly=any(age >= 70 for age in ages),
            child=any(age < 6 for age in ages),
            ald=any(ald for _born, ald in members),
        )

    def columns(self, css_ame: bool) -> dict[str, Any]:
        """The request's stored columns; any criterion or CSS/AME makes it a priority."""
        return {
            "persons_count": self.persons,
            "has_elderly": self.elderly,
            "has_child": self.child,
            "has_ald": self.ald,
            "is_priority": css_ame or self.elderly or self.child or self.ald,
        }


def store_household(request: Request) -> None:
    """Set the stored household columns from the request's persons (for ORM writers)."""
    household = Household.of(
        ((p.birth_date, bool(p.ald)) for p in request.persons), request.created_at.date()
    )
    for name, value in household.columns(bool(request.css_ame)).items():
        setattr(request, name, value)
