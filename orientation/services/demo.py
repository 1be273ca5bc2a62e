"""The demo: two CPTS on real communes, volunteer doctors at real commune points, requests.

Everything created here is labelled as demo data (is_demo, '(démo)' in names): no real GP list
is shipped (see geo/data/SOURCES.md).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import shapely
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from geo.communes import Gazetteer
from geo.territory import commune_contours
from models import (
    Accepting,
    Doctor,
    DoctorSite,
    LocationPrecision,
    Person,
    Reason,
    Request,
    RequestEvent,
    Role,
    Source,
    Status,
    Territory,
    User,
    VolunteerStatus,
)
from orientation.services import accounts
from orientation.services.doctor_refresh import BY_DOCTOR
from orientation.services.doctors import rpps_with_key
from orientation.services.household import store_household
from orientation.services.references import new_reference
from orientation.services.territories import TerritoryInput, add_territory
from orientation.services.workflow import note_reached

# Armentières and the communes around it (Lys valley, Weppes), INSEE COG 2026.
LYS_ARMENTIERES = [
    "59017", "59431", "59143", "59317", "59202", "59088", "59252", "59470", "59457",
    "59128", "59173", "59581", "59643", "59611", "59356", "62338", "62736",
]  # fmt: skip
GRAND_LILLE = ["59350", "59328", "59368", "59378", "59527"]

_FIRST = [
    "Claire",
    "Julien",
    "Sophie",
    "Mehdi",
    "Anne",
    "Thomas",
    "Nadia",
    "Pierre",
    "Léa",
    "Karim",
    "Élodie",
    "Hugo",
    "Inès",
    "Marc",
    "Camille",
    "Yasmine",
    "Louis",
    "Chloé",
]
_LAST = ["Delattre", "Vandenberghe", "Lefebvre", "Benali", "Dupont", "Verhaeghe", "Mahieu",
         "Carpentier", "Deschamps", "Haddad", "Lemaire", "Desmet", "Wallart", "Fontaine",
         "Boutry", "Lecomte", "Vasseur", "Declercq"]  # fmt: skip


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    role: str
    territory: str


def _point_near(insee: str, rng: random.Random, gazetteer: Gazetteer) -> tuple[float, float]:
    """The commune's point, nudged by up to ~300 m while staying inside the commune."""
    commune = gazetteer.by_insee[insee]
    contour = commune_contours()[insee]
    for _ in range(10):
        lat = commune.lat + rng.uniform(-0.0027, 0.0027)
        lon = commune.lon + rng.uniform(-0.004, 0.004)
        if contour.covers(shapely.Point(lon, lat)):
            return round(lat, 5), round(lon, 5)
    return commune.lat, commune.lon


def _placed(insee: str, rng: random.Random, gazetteer: Gazetteer) -> dict[str, Any]:
    """A demo practice's place: a point inside the commune, as given coordinates.

    Not the commune's precision: that means the commune's own point, so saving the card
    (or importing the export) would move the practice there."""
    lat, lon = _point_near(insee, rng, gazetteer)
    return {
        "postal_code": gazetteer.by_insee[insee].postal_codes[0],
        "commune_insee": insee,
        "lat": lat,
        "lon": lon,
        "location_precision": LocationPrecision.ADDRESS,
    }


def _doctors(
    territory: Territory,
    codes: list[str],
    count: int,
    rng: random.Random,
    gazetteer: Gazetteer,
    now: datetime,
) -> list[Doctor]:
    doctors = []
    for i in range(count):
        insee = codes[i % len(codes)] if i < len(codes) else rng.choice(codes)
        place = _placed(insee, rng, gazetteer)
        kind = i % 6
        accepting = (
            Accepting.YES
            if kind in (0, 1, 2)
            else (Accepting.NO if kind == 3 else Accepting.PAUSED if kind == 4 else Accepting.YES)
        )
        # One in six has not confirmed within six months: stale, shown apart on the map.
        confirmed = now - timedelta(
            days=rng.randint(200, 260) if kind == 5 else rng.randint(3, 150)
        )
        doctors.append(
            Doctor(
                territory_id=territory.id,
                # A valid key, as the card checks it: a demo doctor must save unchanged.
                rpps=rpps_with_key(f"1{rng.randint(0, 999_999_999):09d}"),
                first_name=rng.choice(_FIRST),
                last_name=f"{rng.choice(_LAST)} (démo)",
                practice_address=f"{rng.randint(1, 120)} rue de la Gare",
                **place,
                # The practice's landline, or a mobile for those who prefer SMS (an SMS to a
                # landline never arrives, and the card refuses it).
                phone=f"+3332{rng.randint(0, 9_999_999):07d}"
                if i % 3
                else f"+3361{rng.randint(0, 9_999_999):07d}",
                email=f"medecin{i + 1}@{territory.slug}.demo",
                preferred_channel="email" if i % 3 else "sms",
                volunteer_status=VolunteerStatus.VOLUNTEER,
                accepting=accepting,
                paused_until=(now + timedelta(days=45)).date()
                if accepting is Accepting.PAUSED
                else None,
                capacity_left=0 if accepting is not Accepting.YES else rng.choice([1, 2, 3, 5, 8]),
                accepts_under_6=kind != 1,
                accepts_elderly_dependent=True,
                accepts_ald_followup=kind != 2,
                home_visits=i % 3 == 0,
                home_visit_radius_km=5.0 if i % 3 == 0 else 0.0,
                languages="anglais" if i % 4 == 0 else ("arabe" if i % 7 == 0 else ""),
                step_free_access=i % 2 == 0,
                confirmed_at=confirmed,
                confirmed_by=BY_DOCTOR,
                is_demo=True,
            )
        )
    return doctors


def _not_yet_volunteers(
    territory: Territory, codes: list[str], count: int, rng: random.Random, gazetteer: Gazetteer
) -> list[Doctor]:
    """GPs of the territory as the national directory pre-fills them: "pas encore volontaire",
    no availability, waiting for the coordinator to invite them."""
    doctors = []
    for i in range(count):
        place = _placed(rng.choice(codes), rng, gazetteer)
        doctors.append(
            Doctor(
                territory_id=territory.id,
                rpps=rpps_with_key(f"2{rng.randint(0, 999_999_999):09d}"),
                first_name=rng.choice(_FIRST),
                last_name=f"{rng.choice(_LAST)} (démo)",
                practice_address=f"{rng.randint(1, 80)} rue Nationale",
                **place,
                email=f"annuaire{i + 1}@{territory.slug}.demo",
                preferred_channel="email",
                volunteer_status=VolunteerStatus.NOT_YET,
                is_demo=True,
            )
        )
    return doctors


def _second_sites(
    doctors: list[Doctor], codes: list[str], rng: random.Random, gazetteer: Gazetteer
) -> list[DoctorSite]:
    """One demo doctor in five also consults at a "site secondaire" in another commune."""
    sites = []
    for doctor in doctors[::5]:
        insee = rng.choice([c for c in codes if c != doctor.commune_insee])
        lat, lon = _point_near(insee, rng, gazetteer)
        sites.append(
            DoctorSite(
                territory_id=doctor.territory_id,
                doctor_id=doctor.id,
                address=f"{rng.randint(1, 40)} place de la Mairie",
                postal_code=gazetteer.by_insee[insee].postal_codes[0],
                commune_insee=insee,
                lat=lat,
                lon=lon,
                location_precision=LocationPrecision.ADDRESS,  # see _placed
            )
        )
    return sites


_DEMO_REQUESTS = [
    # status, first, last, birth, ald, css_ame, home_visits, insee, reason, source, age days
    (Status.ELIGIBLE, "Jeanne", "Martin", date(1948, 3, 12), True, False, True, "59017",
     Reason.GP_LEFT, Source.QUESTIONNAIRE, 2),
    (Status.ELIGIBLE, "Lina", "Bouzid", date(2022, 9, 2), False, True, False, "59317",
     Reason.MOVED, Source.PROFESSIONAL, 5),
    (Status.IN_PROGRESS, "Paul", "Lenoir", date(1981, 6, 30), False, False, False, "59431",
     Reason.CANNOT_CONTINUE, Source.PHONE, 9),
    (Status.PROPOSED, "Rose", "Vermeulen", date(1990, 1, 21), False, False, False, "59143",
     Reason.GP_LEFT, Source.QUESTIONNAIRE, 20),
    (Status.ORIENTED, "Bernard", "Dufour", date(1952, 11, 5), True, False, False, "59202",
     Reason.GP_LEFT, Source.QUESTIONNAIRE, 60),
    (Status.OUT_OF_TERRITORY, "Karima", "Saïdi", date(1975, 4, 17), False, False, False, "59350",
     Reason.MOVED, Source.QUESTIONNAIRE, 1),
]  # fmt: skip


def _squared_gap(doctor: Doctor, lat: float, lon: float) -> float:
    if doctor.lat is None or doctor.lon is None:
        return float("inf")
    return (doctor.lat - lat) ** 2 + (doctor.lon - lon) ** 2


def _oriented_at(created: datetime, now: datetime) -> datetime:
    """When the demo's oriented request was marked oriented: some days after its proposal,
    and within the current year, so that a fresh demo's year-end survey has a patient."""
    new_year = now.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    return min(max(created + timedelta(days=10), new_year), now)


def _orient(request: Request, doctor: Doctor, proposed_at: datetime, at: datetime) -> None:
    """What the coordinator's proposal then "Marquer comme orientée" leave on a request
    (proposal.mark_oriented through workflow.change_status): the events, the oriented doctor,
    closed_at (the survey and the retention periods count from it)."""
    request.events.append(
        RequestEvent(
            territory_id=request.territory_id,
            at=at,
            actor_label="coordinator",
            from_status=Status.PROPOSED,
            to_status=Status.ORIENTED,
            note=f"Orientée vers {doctor.display_name}. Démo",
        )
    )
    request.status = Status.ORIENTED
    request.oriented_doctor_id = doctor.id
    request.cascade_state = ""
    request.closed_at = at
    request.updated_at = at
    note_reached(request, Status.PROPOSED, proposed_at)
    note_reached(request, Status.ORIENTED, at)


def _requests(
    territory: Territory, gazetteer: Gazetteer, now: datetime, doctors: list[Doctor]
) -> list[Request]:
    result = []
    for (
        status,
        first,
        last,
        birth,
        ald,
        css_ame,
        home,
        insee,
        reason,
        source,
        age,
    ) in _DEMO_REQUESTS:
        commune = gazetteer.by_insee[insee]
        created = now - timedelta(days=age)
        request = Request(
            territory_id=territory.id,
            reference=new_reference(),
            status=status,
            source=source,
            source_tag="pharmacie" if source is Source.QUESTIONNAIRE else "",
            phone="+33612345678",
            email=f"{first.lower()}.{last.lower()}@example.org".replace("ï", "i"),
            preferred_channel="sms",
            street="12 rue de la Paix (démo)",
            postal_code=commune.postal_codes[0],
            commune_insee=insee,
            lat=commune.lat,
            lon=commune.lon,
            location_precision=LocationPrecision.COMMUNE,
            reason=reason,
            need_home_visits=home,
            css_ame=css_ame,
            consent_at=created,
            agrees_to_survey=True,
            created_at=created,
            is_demo=True,
            persons=[
                Person(
                    territory_id=territory.id,
                    first_name=first,
                    last_name=f"{last} (démo)",
                    birth_date=birth,
                    ald=ald,
                )
            ],
        )
        store_household(request)
        first_status = (
            Status.OUT_OF_TERRITORY if status is Status.OUT_OF_TERRITORY else Status.ELIGIBLE
        )
        note_reached(request, first_status, created)
        request.events = [
            RequestEvent(
                territory_id=territory.id,
                at=created,
                actor_label="system",
                from_status=Status.RECEIVED,
                to_status=first_status,
                note="Contrôle du territoire à la réception",
            ),
        ]
        if status not in (Status.ELIGIBLE, Status.OUT_OF_TERRITORY):
            # An oriented request was first proposed: the app orients only after a proposal.
            step = Status.PROPOSED if status is Status.ORIENTED else status
            request.events.append(
                RequestEvent(
                    territory_id=territory.id,
                    at=created + timedelta(hours=20),
                    actor_label="coordinator",
                    from_status=first_status,
                    to_status=step,
                    note="Démo",
                )
            )
            note_reached(request, step, created + timedelta(hours=20))
        if status is Status.ORIENTED:
            nearest = min(doctors, key=lambda d: _squared_gap(d, commune.lat, commune.lon))
            _orient(request, nearest, created + timedelta(hours=20), _oriented_at(created, now))
        result.append(request)
    return result


def seed_demo(session: Session, gazetteer: Gazetteer, now: datetime) -> list[DemoLogin]:
    """Create the demo once; on later runs reset the demo passwords. Returns the logins."""
    rng = random.Random(2026)  # noqa: S311 - reproducible demo data, not security
    lys = session.scalar(select(Territory).where(Territory.slug == "lys-armentieres"))
    if lys is None:
        lys = add_territory(
            session,
            gazetteer,
            TerritoryInput(
                name="CPTS Lys-Armentières (démo)",
                slug="lys-armentieres",
                insee_codes=LYS_ARMENTIERES,
                contact_phone="03 20 00 00 00",
                contact_email="coordination@lys-armentieres.demo",
                dpo_contact="dpo@lys-armentieres.demo",
            ),
        )
        lille = add_territory(
            session,
            gazetteer,
            TerritoryInput(
                name="CPTS Grand-Lille (démo)",
                slug="grand-lille",
                insee_codes=GRAND_LILLE,
                contact_phone="03 20 11 11 11",
                contact_email="contact@grand-lille.demo",
                dpo_contact="dpo@grand-lille.demo",
            ),
        )
        lys_doctors = _doctors(lys, LYS_ARMENTIERES, 30, rng, gazetteer, now)
        session.add_all(lys_doctors)
        session.add_all(_not_yet_volunteers(lys, LYS_ARMENTIERES, 4, rng, gazetteer))
        session.add_all(_doctors(lille, GRAND_LILLE, 12, rng, gazetteer, now))
        session.flush()  # the oriented demo request names its doctor by id
        session.add_all(_requests(lys, gazetteer, now, lys_doctors))
        session.flush()
        session.add_all(_second_sites(lys_doctors, LYS_ARMENTIERES, rng, gazetteer))
    else:
        found = session.scalar(select(Territory).where(Territory.slug == "grand-lille"))
        if found is None:
            raise ValueError("the demo CPTS grand-lille was removed: start from an empty database")
        lille = found
    accounts_wanted = [
        ("coordination@lys-armentieres.demo", "Coordinatrice démo", Role.COORDINATOR, lys),
        ("admin@lys-armentieres.demo", "Administrateur CPTS démo", Role.CPTS_ADMIN, lys),
        ("pharmacie@lys-armentieres.demo", "Pharmacienne démo", Role.REFERRER, lys),
        ("coordination@grand-lille.demo", "Coordinateur démo", Role.COORDINATOR, lille),
    ]
    logins = []
    for email, full_name, role, territory in accounts_wanted:
        password = secrets.token_urlsafe(12) + "-7a"
        user = session.scalar(select(User).where(User.email == email))
        if user is None:
            user = accounts.create_user(
                session,
                email=email,
                full_name=full_name,
                role=role,
                password=password,
                territory_id=territory.id,
                profession="pharmacien" if role is Role.REFERRER else "",
            )
        else:
            accounts.set_password(user, password)
        logins.append(DemoLogin(email, password, role.value, territory.name))
        if role is Role.REFERRER:
            _referred_by(session, user)
    return logins


def _referred_by(session: Session, referrer: User) -> None:
    """The demo's professional referrals name the demo pharmacist, as a real referral does."""
    session.flush()
    session.execute(
        update(Request)
        .where(
            Request.territory_id == referrer.territory_id,
            Request.source == Source.PROFESSIONAL,
            Request.is_demo.is_(True),
            Request.referrer_id.is_(None),
        )
        .values(referrer_id=referrer.id)
    )
