"""The nearest doctors who fit a request: needs from the request, ranking from geo.ranking."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from geo.ranking import MAIN_SITE, DoctorIndex, DoctorPoint, Exclusion, PatientNeeds
from models import Doctor, DoctorSite, Request, Territory, VolunteerStatus
from orientation.services.doctors import contact_route, doctor_points, unreachable_reason

# Shown to coordinators for each doctor left out (services know nothing of Flask-Babel).
EXCLUSION_LABELS: dict[Exclusion, str] = {
    Exclusion.NOT_PLACED: "adresse du cabinet non localisée",
    Exclusion.NOT_ACCEPTING: "n'accepte pas de nouveaux patients",
    Exclusion.STALE: "disponibilité à reconfirmer (trop ancienne)",
    Exclusion.NO_CAPACITY: "plus de place annoncée",
    Exclusion.NO_UNDER_6: "ne prend pas d'enfants de moins de 6 ans",
    Exclusion.NO_ELDERLY_DEPENDENT: "ne prend pas de personnes âgées dépendantes",
    Exclusion.NO_ALD_FOLLOWUP: "ne prend pas de suivi ALD",
    Exclusion.NO_HOME_VISITS: "ne fait pas de visites à domicile",
    Exclusion.OUTSIDE_HOME_VISIT_RADIUS: "domicile hors de son rayon de visites",
    Exclusion.NO_STEP_FREE_ACCESS: "cabinet sans accès de plain-pied",
    Exclusion.TOO_FAR: "trop loin",
}


class NoPatientPoint(ValueError):
    """The request has neither a point nor a known commune: nothing to rank from."""


@dataclass(frozen=True)
class RankedDoctor:
    """A ranked doctor and the site the distance was measured from (None: main practice)."""

    doctor: Doctor
    distance_km: float
    site: DoctorSite | None = None

    @property
    def address(self) -> str:
        if self.site is None:
            return f"{self.doctor.practice_address} {self.doctor.postal_code}".strip()
        return f"{self.site.address} {self.site.postal_code}".strip()

    @property
    def unreachable(self) -> str:
        """Why no message can reach this doctor (a landline and no e-mail...), in French;
        empty when one can. Such a doctor stays in the ranking, in its place: the coordinator
        may phone them and propose them to the patient, but cannot ask them from the page."""
        return "" if contact_route(self.doctor) is not None else unreachable_reason(self.doctor)


@dataclass(frozen=True)
class LeftOutDoctor:
    doctor: Doctor
    distance_km: float | None
    reasons: tuple[str, ...]  # in French


@dataclass(frozen=True)
class Ranking:
    needs: PatientNeeds
    max_km: float
    candidates: list[RankedDoctor]
    left_out: list[LeftOutDoctor]


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def patient_point(request: Request) -> tuple[float, float] | None:
    """The household's point, or the commune's point when no address point is known."""
    if request.lat is not None and request.lon is not None:
        return request.lat, request.lon
    commune = gazetteer().get(request.commune_insee) if request.commune_insee else None
    return (commune.lat, commune.lon) if commune is not None else None


def patient_needs(request: Request, today: date) -> PatientNeeds:
    """What a doctor must offer this household (under 6, 70+, ALD, home visits, access)."""
    point = patient_point(request)
    if point is None:
        raise NoPatientPoint("la demande n'a ni point ni commune connue")
    ages = [_age(p.birth_date, today) for p in request.persons if p.birth_date is not None]
    return PatientNeeds(
        lat=point[0],
        lon=point[1],
        under_6=any(age < 6 for age in ages),
        elderly_dependent=any(age >= 70 for age in ages),
        ald_followup=request.need_chronic_followup or any(p.ald for p in request.persons),
        home_visits=request.need_home_visits,
        # Reduced mobility: the practice must be reachable without steps.
        step_free_access=request.need_reduced_mobility,
    )


def _volunteer_points(
    session: Session, territory: Territory, now: datetime
) -> tuple[list[DoctorPoint], dict[int, Doctor]]:
    """Ranking input for the volunteers only: doctors never asked would only add noise."""
    volunteers = {
        d.id: d
        for d in session.scalars(
            select(Doctor).where(
                Doctor.territory_id == territory.id,
                Doctor.active.is_(True),
                Doctor.volunteer_status == VolunteerStatus.VOLUNTEER,
            )
        )
    }
    points = [p for p in doctor_points(session, territory, now) if p.id in volunteers]
    return points, volunteers


def rank_doctors(
    session: Session,
    territory: Territory,
    request: Request,
    now: datetime,
    *,
    k: int = 10,
    exclude: frozenset[int] = frozenset(),
) -> Ranking:
    """The k nearest fitting doctors, and every other doctor with the reasons in French."""
    needs = patient_needs(request, now.date())
    points, by_id = _volunteer_points(session, territory, now)
    points = [p for p in points if p.id not in exclude]
    index = DoctorIndex(points)
    max_km = float(territory.max_distance_km)
    ranked = index.rank(needs, k=k, max_km=max_km)
    chosen = {c.doctor_id for c in ranked}
    left_out = [
        LeftOutDoctor(
            by_id[a.doctor_id],
            a.distance_km,
            tuple(EXCLUSION_LABELS[r] for r in a.reasons) or ("au-delà des plus proches",),
        )
        for a in index.assess(needs, max_km)
        if a.doctor_id not in chosen
    ]
    site_ids = [c.site for c in ranked if c.site != MAIN_SITE]
    sites = (
        {s.id: s for s in session.scalars(select(DoctorSite).where(DoctorSite.id.in_(site_ids)))}
        if site_ids
        else {}
    )
    return Ranking(
        needs=needs,
        max_km=max_km,
        candidates=[
            RankedDoctor(by_id[c.doctor_id], c.distance_km, sites.get(c.site)) for c in ranked
        ],
        left_out=left_out,
    )


def needs_labels(needs: PatientNeeds) -> list[str]:
    """The needs in French, for the page and for the anonymised message to doctors."""
    labels = []
    if needs.under_6:
        labels.append("enfant de moins de 6 ans")
    if needs.elderly_dependent:
        labels.append("personne de 70 ans ou plus")
    if needs.ald_followup:
        labels.append("suivi d'une affection de longue durée")
    if needs.home_visits:
        labels.append("visites à domicile")
    if needs.step_free_access:
        labels.append("mobilité réduite (accès de plain-pied)")
    return labels
