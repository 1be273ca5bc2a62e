"""The request page's data and the coordinator's corrections: territory override, point, status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from geo.territory import territory_shape
from models import (
    Doctor,
    DoctorContact,
    LocationPrecision,
    Message,
    Request,
    RequestEvent,
    Status,
    Territory,
    User,
)
from orientation.services.local_time import in_paris
from orientation.services.workflow import (
    ProcessingLimited,
    TransitionRefused,
    change_status,
    ensure_workable,
    record_event,
)

# Mainland France and Corsica, with a margin: a point outside is a typo, not a home.
LAT_RANGE = (41.0, 51.6)
LON_RANGE = (-5.8, 10.0)


# The timeline's words for events that are not plain status changes.
EVENT_LABELS = {
    "doctor_place_released": "Place rendue à un médecin",
    "proposal_declined": "La proposition ne convient pas",
    "territory_override": "Dérogation au territoire",
    "point_corrected": "Point du domicile corrigé",
    "doctors_asked": "Médecins sollicités",
    "doctor_accepted": "Un médecin accepte",
    "doctor_declined": "Un médecin refuse",
    "doctor_no_answer": "Médecin sans réponse dans le délai",
    "cascade_started": "Cascade lancée",
    "cascade_exhausted": "Cascade épuisée : à reprendre",
    "proposal": "Proposition au patient",
    "phone_call": "Appel au patient",
    "limited": "Traitement limité (demande du patient)",
    "limitation_lifted": "Limitation du traitement levée",
    "cascade_stopped": "Cascade arrêtée",
    "follow_up_sent": "Suivi envoyé au patient",
    "follow_up_no_contact": "Suivi : ni téléphone ni e-mail, à appeler",
    "follow_up_answer": "Réponse du patient au suivi",
    "contact_corrected": "Coordonnées corrigées par le patient",
    "patient_comment": "Message du patient",
    "link_renewed": "Nouveau lien privé envoyé, l'ancien ne fonctionne plus",
    "rectified": "Données rectifiées",
    "anonymised": "Données effacées",
    # rights.RIGHT_LABELS, written out: rights.py imports this module through doctor_contacts.
    "rights_access": "Droits du patient : accès (copie des données)",
    "rights_rectification": "Droits du patient : rectification",
    "rights_erasure": "Droits du patient : effacement",
    "rights_limitation": "Droits du patient : limitation du traitement",
    "rights_limitation_lifted": "Droits du patient : levée de la limitation",
}

# Who acted, for the labels the jobs and the intake write (a doctor is "doctor:<id>").
ACTOR_LABELS = {"system": "système", "coordinator": "coordination", "patient": "patient"}
DOCTOR_ACTOR = "doctor:"

# How the household's point was placed, in the note of a correction.
PRECISION_LABELS = {
    LocationPrecision.NONE: "non localisé",
    LocationPrecision.COMMUNE: "centre de la commune",
    LocationPrecision.ADDRESS: "adresse",
    LocationPrecision.MANUAL: "placé à la main",
}

# A request that reached one of these is settled: its page stays readable, nothing changes it.
ENDED_WORDS = {Status.ORIENTED: "orientée", Status.CLOSED: "clôturée", Status.WITHDRAWN: "retirée"}


class CaseError(ValueError):
    """A coordinator action refused, with a French message for the form."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field


class RequestEnded(ValueError):
    """The request is oriented, closed or withdrawn: no action changes it any more.

    Not a CaseError: it is about the request, not about a form's field, and views say it
    at the top of the page whichever form was sent."""


@dataclass(frozen=True)
class PersonView:
    first_name: str
    last_name: str
    birth_date: date | None
    age: int | None
    ald: bool


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # "event" or "message"
    event: RequestEvent | None = None
    message: Message | None = None


@dataclass(frozen=True)
class CaseView:
    request: Request
    persons: list[PersonView]
    in_territory: bool | None  # None: no point to check
    contacts: list[tuple[DoctorContact, Doctor]]
    timeline: list[TimelineItem]
    actors: dict[int, str]  # user id -> name
    doctor_names: dict[int, str]  # doctor id -> name, for the events doctors wrote

    def who(self, event: RequestEvent) -> str:
        """The event's actor as people read it: a name, "système", "patient"..."""
        if event.actor_user_id is not None:
            return self.actors.get(event.actor_user_id, "")
        doctor_id = _doctor_actor(event.actor_label)
        if doctor_id is not None:
            return self.doctor_names.get(doctor_id, "médecin")
        return ACTOR_LABELS.get(event.actor_label, event.actor_label)


def _doctor_actor(label: str) -> int | None:
    """The doctor's id in an actor label "doctor:<id>" (a doctor's answer), else None."""
    rest = label.removeprefix(DOCTOR_ACTOR)
    return int(rest) if rest != label and rest.isdigit() else None


def get_request(session: Session, request_id: int) -> Request | None:
    """A request of the session's territory (another CPTS's id gives None)."""
    return session.scalar(
        select(Request)
        .where(Request.id == request_id)
        .options(selectinload(Request.persons), selectinload(Request.events))
    )


def _age(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def case_view(session: Session, territory: Territory, request: Request, now: datetime) -> CaseView:
    """Everything the request page shows."""
    today = now.date()
    persons = [
        PersonView(
            p.first_name,
            p.last_name,
            p.birth_date,
            _age(p.birth_date, today) if p.birth_date else None,
            p.ald,
        )
        for p in request.persons
    ]
    in_territory = None
    if request.lat is not None and request.lon is not None:
        shape = territory_shape(frozenset(territory.insee_codes))
        in_territory = shape.contains(request.lat, request.lon)
    contacts = [
        (contact, doctor)
        for contact, doctor in session.execute(
            select(DoctorContact, Doctor)
            .join(Doctor, Doctor.id == DoctorContact.doctor_id)
            .where(DoctorContact.request_id == request.id)
            .order_by(DoctorContact.position, DoctorContact.id)
        )
    ]
    messages = session.scalars(
        select(Message).where(Message.request_id == request.id).order_by(Message.id)
    ).all()
    timeline = [TimelineItem(e.at, "event", event=e) for e in request.events] + [
        TimelineItem(m.created_at, "message", message=m) for m in messages
    ]
    timeline.sort(key=lambda item: item.at)
    user_ids = {e.actor_user_id for e in request.events if e.actor_user_id is not None}
    actors = {u.id: u.full_name for u in session.scalars(select(User).where(User.id.in_(user_ids)))}
    doctor_ids = {_doctor_actor(e.actor_label) for e in request.events} - {None}
    doctor_names = {
        d.id: d.display_name
        for d in session.scalars(select(Doctor).where(Doctor.id.in_(doctor_ids)))
    }
    return CaseView(request, persons, in_territory, contacts, timeline, actors, doctor_names)


def ended_notice(request: Request) -> str:
    """Why the request can no longer be worked on ("" while it is open)."""
    word = ENDED_WORDS.get(Status(request.status))
    if word is None:
        return ""
    when = request.closed_at or request.updated_at
    return f"Demande {word} le {in_paris(when):%d/%m/%Y} : plus d'action possible."


def ensure_open(request: Request) -> None:
    """Raise RequestEnded, saying since when, once the request is oriented, closed or withdrawn."""
    notice = ended_notice(request)
    if notice:
        raise RequestEnded(notice)


def override_territory(
    request: Request, reason: str, *, now: datetime, user_id: int
) -> RequestEvent:
    """Accept a request despite the territory check; the reason is required and recorded."""
    ensure_workable(request)
    ensure_open(request)
    reason = reason.strip()
    if len(reason) < 5:
        raise CaseError("Indiquez la raison de la dérogation (5 caractères au moins).", "reason")
    if request.status not in (Status.OUT_OF_TERRITORY, Status.RECEIVED):
        raise CaseError("Cette demande est déjà acceptée sur le territoire.")
    event = change_status(request, Status.ELIGIBLE, now=now, actor_user_id=user_id, note=reason)
    event.kind = "territory_override"
    return event


def correct_point(
    request: Request, lat: float | None, lon: float | None, *, now: datetime, user_id: int
) -> RequestEvent:
    """Move the household's point (a coordinator knows the street); the old one is kept."""
    # Placing the home is working on the request; a wrong address is corrected through the
    # rights desk's rectification instead, which a limitation leaves open.
    ensure_workable(request)
    ensure_open(request)  # a settled request's point no longer matters to anyone
    if lat is None or not LAT_RANGE[0] <= lat <= LAT_RANGE[1]:
        raise CaseError("La latitude doit être un nombre entre 41 et 51,6 (France).", "lat")
    if lon is None or not LON_RANGE[0] <= lon <= LON_RANGE[1]:
        raise CaseError("La longitude doit être un nombre entre -5,8 et 10 (France).", "lon")
    before = (
        f"{request.lat:.6f}, {request.lon:.6f} "
        f"({PRECISION_LABELS[LocationPrecision(request.location_precision)]})"
        if request.lat is not None and request.lon is not None
        else "aucun"
    )
    request.lat, request.lon = round(lat, 6), round(lon, 6)
    request.location_precision = LocationPrecision.MANUAL
    request.updated_at = now
    return record_event(
        request,
        "point_corrected",
        now=now,
        actor_user_id=user_id,
        note=f"Point corrigé : avant {before} ; après {lat:.6f}, {lon:.6f}.",
    )


def set_status(
    request: Request, to: Status, *, now: datetime, user_id: int, note: str = ""
) -> RequestEvent:
    """A status change asked by a coordinator, in the allowed workflow only."""
    try:
        return change_status(request, to, now=now, actor_user_id=user_id, note=note)
    except ProcessingLimited:
        raise  # its own French message says why, not the generic one below
    except TransitionRefused:
        raise CaseError(
            "Ce changement de statut n'est pas possible depuis le statut actuel."
        ) from None
