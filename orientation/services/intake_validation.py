"""The one validation path of a submission, shared by the HTML questionnaire and the JSON API.

Two passes: the marshmallow schema checks the shape (types, lengths, choices) and is also the
source of the OpenAPI document; then the domain checks (phone, e-mail, postal code and commune,
birth dates, consent) run on what is left. Every problem is reported at once, keyed by the
field's name as the form names it (`persons-0-birth_date`), with a French message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from geo.communes import CommuneRecord, gazetteer
from geo.geocoding import find_commune
from models import Reason
from orientation.services.contact import (
    InvalidEmail,
    InvalidPhone,
    is_mobile,
    normalise_email,
    normalise_phone,
)

MAX_PERSONS = 6
CHANNELS = ("sms", "email", "phone")
# Field lengths, also written as maxlength in the form: a 10,000-character paste is refused.
LIMITS = {
    "first_name": 100,
    "last_name": 100,
    "phone": 40,
    "email": 254,
    "best_time": 100,
    "street": 200,
    "postal_code": 10,
    "commune": 100,
    "reason_detail": 1000,
    "language": 60,
    "comment": 2000,
    "source_tag": 40,
    "website": 200,
}
PERSON_TEXT = ("first_name", "last_name", "birth_date")

REQUIRED = "Ce champ est obligatoire."

# Marks, in a field's metadata, an answer the checks below refuse to go without. These fields
# keep a blank default (the form sends blanks, and a missing answer is reported in the same round
# as the other errors, in words about the person), so marshmallow's `required` cannot say it; the
# OpenAPI document lists the marked fields as `required` (orientation/blueprints/api.py). Rules
# that depend on other answers (phone or e-mail, the commune) are said in the descriptions.
NEEDED = "needed"

# The messages that speak to the person, by who fills in the form: the person (questionnaire,
# API: software passes its messages on to them) or staff for a patient (phone line, referral).
TO_PERSON = {
    "contact": "Indiquez un téléphone ou une adresse e-mail pour que la CPTS vous recontacte.",
    "reason": "Dites-nous pourquoi vous cherchez un médecin traitant.",
    "consent": "Votre accord est nécessaire pour que la CPTS traite votre demande.",
}
ABOUT_PATIENT = {
    "contact": (
        "Indiquez un téléphone ou une adresse e-mail pour que la CPTS recontacte le patient."
    ),
    "reason": "Indiquez pourquoi le patient cherche un médecin traitant.",
    "consent": "L'accord du patient est nécessaire pour que la CPTS traite sa demande.",
}


def _too_long(limit: int) -> validate.Length:
    return validate.Length(max=limit, error=f"Ce texte est trop long : {limit} caractères au plus.")


class Text(fields.String):
    default_error_messages = {
        "required": REQUIRED,
        "null": REQUIRED,
        "invalid": "Saisissez du texte.",
        "invalid_utf8": "Ce texte contient des caractères illisibles.",
    }


class Flag(fields.Boolean):
    default_error_messages = {
        "required": REQUIRED,
        "null": "Répondez par oui ou non.",
        "invalid": "Répondez par oui ou non.",
    }


def _text(name: str, **kwargs: Any) -> Text:
    return Text(load_default="", validate=_too_long(LIMITS[name]), **kwargs)


class PersonSchema(Schema):
    """One person of the household."""

    error_messages = {  # noqa: RUF012 - marshmallow's class-level setting
        "type": "Une personne s'écrit comme un objet : prénom, nom, date de naissance."
    }

    class Meta:
        unknown = EXCLUDE
        description = "Une personne du foyer ; une personne laissée entièrement vide est ignorée."

    first_name = _text("first_name", metadata={"description": "Prénom", NEEDED: True})
    last_name = _text("last_name", metadata={"description": "Nom", NEEDED: True})
    birth_date = Text(
        load_default="",
        validate=_too_long(10),
        metadata={
            "description": "Date de naissance, AAAA-MM-JJ ou JJ/MM/AAAA",
            "format": "date",
            NEEDED: True,
        },
    )
    ald = Flag(load_default=False, metadata={"description": "Affection de longue durée"})


class SubmissionSchema(Schema):
    """A request for a médecin traitant, as the questionnaire or professional software sends it."""

    class Meta:
        unknown = EXCLUDE
        description = (
            "Une demande de médecin traitant. Outre les champs obligatoires : un téléphone ou "
            "une adresse e-mail (au moins l'un des deux) ; la commune (commune ou commune_insee) "
            "quand le code postal en couvre plusieurs ; le moyen de contact choisi "
            "(preferred_channel) doit avoir sa coordonnée."
        )

    persons = fields.List(
        fields.Nested(PersonSchema),
        load_default=list,
        validate=validate.Length(
            max=MAX_PERSONS, error=f"{MAX_PERSONS} personnes au plus par demande."
        ),
        error_messages={"invalid": "Liste de personnes attendue."},
        metadata={"description": "1 à 6 personnes du foyer", "minItems": 1, NEEDED: True},
    )
    phone = _text(
        "phone",
        metadata={
            "description": "Téléphone (FR ou BE) ; obligatoire sans e-mail : le téléphone ou "
            "l'e-mail, au moins l'un des deux"
        },
    )
    email = _text(
        "email",
        metadata={
            "description": "Adresse e-mail ; obligatoire sans téléphone : le téléphone ou "
            "l'e-mail, au moins l'un des deux"
        },
    )
    preferred_channel = Text(
        load_default="",
        validate=validate.OneOf(("", *CHANNELS), error="Choisissez SMS, e-mail ou téléphone."),
        metadata={
            "description": "sms demande un numéro de portable, email l'adresse e-mail, phone un "
            "numéro de téléphone ; vide : choisi d'après les coordonnées données"
        },
    )
    best_time = _text("best_time")
    street = _text("street", metadata={"description": "Numéro et rue"})
    postal_code = _text(
        "postal_code", metadata={"description": "Code postal, 5 chiffres", NEEDED: True}
    )
    commune = _text(
        "commune",
        metadata={
            "description": "Nom de la commune ; obligatoire (ou commune_insee) quand le code "
            "postal couvre plusieurs communes : /api/v1/communes?postal_code= les donne"
        },
    )
    commune_insee = Text(
        load_default="",
        validate=_too_long(5),
        metadata={"description": "Code INSEE de la commune, à la place de son nom"},
    )
    reason = Text(
        load_default="",
        validate=validate.OneOf(
            ("", *(r.value for r in Reason)), error="Choisissez une raison dans la liste."
        ),
        # The blank choice is the form's "choose" line, refused as missing, not an answer.
        metadata={
            "description": "Pourquoi la personne cherche un médecin traitant",
            "enum": [r.value for r in Reason],
            NEEDED: True,
        },
    )
    reason_detail = _text("reason_detail")
    already_sees_gp = Flag(load_default=False)
    need_home_visits = Flag(load_default=False)
    need_reduced_mobility = Flag(load_default=False)
    need_chronic_followup = Flag(load_default=False)
    language = _text("language")
    css_ame = Flag(load_default=False, metadata={"description": "CSS ou AME"})
    comment = _text("comment")
    consent = Flag(
        load_default=False,
        metadata={"description": "Accord RGPD : obligatoire, true", "enum": [True], NEEDED: True},
    )
    agrees_to_survey = Flag(load_default=False)
    source_tag = _text("source_tag")
    website = _text("website", metadata={"description": "Laisser vide (anti-robots)"})


@dataclass(frozen=True)
class PersonData:
    first_name: str
    last_name: str
    birth_date: date
    ald: bool


@dataclass(frozen=True)
class IntakeData:
    """A submission that passed every check, normalised."""

    persons: list[PersonData]
    phone: str  # E.164 or ""
    email: str
    preferred_channel: str
    best_time: str
    street: str
    postal_code: str
    commune: CommuneRecord
    reason: Reason
    reason_detail: str
    already_sees_gp: bool
    need_home_visits: bool
    need_reduced_mobility: bool
    need_chronic_followup: bool
    language: str
    css_ame: bool
    comment: str
    agrees_to_survey: bool
    source_tag: str


class IntakeInvalid(ValueError):
    """The submission has errors: `errors` maps field names to French messages."""

    def __init__(self, errors: dict[str, str], communes: list[CommuneRecord] | None = None):
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors
        # When the commune did not match its postal code: the communes to choose from.
        self.communes = communes or []


class SpamSuspected(ValueError):
    """The honeypot field was filled: a robot, not a person."""


def _flatten(messages: Any, prefix: str = "") -> dict[str, str]:
    """marshmallow's nested errors to {'persons-0-birth_date': 'message'}."""
    flat: dict[str, str] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            # marshmallow's "_schema": the value as a whole (a person that is not an object).
            name = (
                prefix if key == "_schema" and prefix else f"{prefix}-{key}" if prefix else str(key)
            )
            flat.update(_flatten(value, name))
    elif isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages):
        flat[prefix] = " ".join(messages)
    elif isinstance(messages, str):
        flat[prefix] = messages
    else:
        flat[prefix or "_schema"] = "Ce champ n'est pas valide."
    return flat


# The forms a birth date is read in: 07/03/1950 (or with '.', '-', ' '), 1950-03-07 (the date
# input, the API), and 8 digits: 07031950 as typed on a phone's number pad, which has no '/',
# or 19500307 (ISO's basic form, from software). A birth year is 19xx or 20xx: the two readings
# of 8 digits never both give one.
_TYPED = re.compile(r"(\d{1,2})[/.\- ](\d{1,2})[/.\- ](\d{4})")
_ISO = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
UNREADABLE_DATE = "Date de naissance illisible : écrivez-la comme 07/03/1950."
IMPOSSIBLE_DATE = "Cette date n'existe pas : vérifiez le jour et le mois."


def _year_month_day(text: str) -> tuple[int, int, int] | None:
    if typed := _TYPED.fullmatch(text):
        day, month, year = typed.groups()
    elif iso := _ISO.fullmatch(text):
        year, month, day = iso.groups()
    elif re.fullmatch(r"\d{8}", text):
        year_first = text[:2] in ("19", "20") and text[4:6] not in ("19", "20")
        year, month, day = (
            (text[:4], text[4:6], text[6:]) if year_first else (text[4:], text[2:4], text[:2])
        )
    else:
        return None
    return int(year), int(month), int(day)


def parse_birth_date(text: str, today: date) -> date:
    """'07/03/1950', '07031950' or '1950-03-07' as a date; raise ValueError in French."""
    read = _year_month_day(text.strip())
    if read is None:
        raise ValueError(UNREADABLE_DATE)
    try:
        value = date(*read)
    except ValueError:  # read, but no such day: 31/02, 12/13
        raise ValueError(IMPOSSIBLE_DATE) from None
    if value > today:
        raise ValueError("La date de naissance ne peut pas être dans le futur.")
    if value.year < 1900:
        raise ValueError("Vérifiez l'année : la date de naissance est avant 1900.")
    return value


# A postal code of France's departements (01-95, Corsica's 20) or overseas (97, 98): one we do
# not know is real but outside the region the gazetteer covers, not a typo to correct.
_FRENCH_POSTAL_CODE = re.compile(r"(0[1-9]|[1-8]\d|9[0-5]|9[78])\d{3}")
ELSEWHERE_IN_FRANCE = (
    "Ce code postal n'est pas dans les Hauts-de-France, la seule région que couvre ce service : "
    "vérifiez-le. Ailleurs, la caisse d'Assurance Maladie (CPAM) aide à trouver un médecin "
    "traitant : ameli.fr ou le 3646."
)


@cache
def _departements() -> frozenset[str]:
    """The departements of the gazetteer (the Hauts-de-France's), as postal codes begin."""
    return frozenset(code[:2] for code in gazetteer().by_postal_code)


@dataclass
class _Checker:
    data: dict[str, Any]
    today: date
    wording: Mapping[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    communes: list[CommuneRecord] = field(default_factory=list)

    def persons(self) -> list[PersonData]:
        result = []
        for index, person in enumerate(self.data.get("persons", [])):
            if not any(str(person.get(k, "")).strip() for k in PERSON_TEXT):
                continue  # an extra block left empty
            key = f"persons-{index}"
            first, last = person["first_name"].strip(), person["last_name"].strip()
            if not first:
                self.errors[f"{key}-first_name"] = "Indiquez le prénom."
            if not last:
                self.errors[f"{key}-last_name"] = "Indiquez le nom."
            born: date | None = None
            if not person["birth_date"].strip():
                self.errors[f"{key}-birth_date"] = "Indiquez la date de naissance."
            else:
                try:
                    born = parse_birth_date(person["birth_date"], self.today)
                except ValueError as exc:
                    self.errors[f"{key}-birth_date"] = str(exc)
            if first and last and born:
                result.append(PersonData(first, last, born, bool(person["ald"])))
        if not any(k.startswith("persons-") for k in self.errors) and not result:
            self.errors["persons-0-first_name"] = (
                "Indiquez au moins une personne : prénom, nom et date de naissance."
            )
        return result

    def contact(self) -> tuple[str, str, str]:
        phone = email = ""
        raw_phone, raw_email = self.data["phone"].strip(), self.data["email"].strip()
        if raw_phone:
            try:
                phone = normalise_phone(raw_phone)
            except InvalidPhone as exc:
                self.errors["phone"] = str(exc)
        if raw_email:
            try:
                email = normalise_email(raw_email)
            except InvalidEmail as exc:
                self.errors["email"] = str(exc)
        if not raw_phone and not raw_email:
            self.errors["phone"] = self.wording["contact"]
        channel = self.data["preferred_channel"]
        if "phone" in self.errors or "email" in self.errors:
            return phone, email, channel
        if not channel:
            channel = "sms" if phone and is_mobile(phone) else ("email" if email else "phone")
        if channel == "sms" and not (phone and is_mobile(phone)):
            self.errors["preferred_channel"] = (
                "Pour recevoir des SMS, indiquez un numéro de portable."
            )
        elif channel == "email" and not email:
            self.errors["preferred_channel"] = "Pour être contacté par e-mail, indiquez l'adresse."
        elif channel == "phone" and not phone:
            self.errors["preferred_channel"] = "Pour être appelé, indiquez un numéro de téléphone."
        return phone, email, channel

    def commune(self) -> CommuneRecord | None:
        postal_code = re.sub(r"\s", "", self.data["postal_code"])
        if not postal_code:
            self.errors["postal_code"] = "Indiquez le code postal."
            return None
        if not re.fullmatch(r"\d{5}", postal_code):
            self.errors["postal_code"] = "Le code postal compte 5 chiffres, par exemple 59280."
            return None
        choices = gazetteer().communes_of_postal_code(postal_code)
        if not choices:
            self.errors["postal_code"] = (
                ELSEWHERE_IN_FRANCE
                if _FRENCH_POSTAL_CODE.fullmatch(postal_code)
                and postal_code[:2] not in _departements()
                else "Nous ne connaissons pas ce code postal : vérifiez-le."
            )
            return None
        name, insee = self.data["commune"].strip(), self.data["commune_insee"].strip()
        if not name and not insee and len(choices) == 1:
            return choices[0]  # a postal code of one commune says it all
        found = find_commune(postal_code, name, insee)
        if found is None:
            self.communes = choices
            self.errors["commune"] = (
                f"« {name} » n'est pas une commune du code postal {postal_code} : "
                "choisissez-la dans la liste, ou vérifiez le code postal."
                if name
                else f"Choisissez la commune parmi celles du code postal {postal_code}."
            )
        return found


# Schemas are stateless once built; building one deep-copies its fields, so build them once.
_SUBMISSION = SubmissionSchema()
_PERSON = PersonSchema()
_BOOLEANS = frozenset(n for n, f in _SUBMISSION.fields.items() if isinstance(f, fields.Boolean))


def validate_submission(
    payload: Mapping[str, Any], *, today: date, about_patient: bool = False
) -> IntakeData:
    """Check and normalise a submission; raise IntakeInvalid (all errors) or SpamSuspected.

    `about_patient`: staff fill it in for a patient, and the messages speak of the patient."""
    try:
        data: dict[str, Any] = _SUBMISSION.load(payload)
        schema_errors: dict[str, str] = {}
    except ValidationError as exc:
        schema_errors = _flatten(exc.messages)
        # Keep checking what did load, so the person sees every problem in one round.
        valid = exc.valid_data if isinstance(exc.valid_data, dict) else {}
        defaults = _SUBMISSION.load({})
        data = {**defaults, **valid}
        data["persons"] = [
            {**_PERSON.load({}), **p} for p in data.get("persons", []) if isinstance(p, dict)
        ]
    if data.get("website", "").strip():
        raise SpamSuspected()
    checker = _Checker(data, today, ABOUT_PATIENT if about_patient else TO_PERSON)
    persons = checker.persons()
    phone, email, channel = checker.contact()
    commune = checker.commune()
    if not data["reason"]:
        checker.errors["reason"] = checker.wording["reason"]
    if not data["consent"]:
        checker.errors["consent"] = checker.wording["consent"]
    if not persons and any(k == "persons" or k.startswith("persons-") for k in schema_errors):
        # The list itself was refused (too long, not a list): "at least one person" would
        # contradict the message that says why.
        checker.errors.pop("persons-0-first_name", None)
    errors = {**checker.errors, **schema_errors}
    if errors or commune is None:
        raise IntakeInvalid(errors, checker.communes)
    return IntakeData(
        persons=persons,
        phone=phone,
        email=email,
        preferred_channel=channel,
        best_time=data["best_time"].strip(),
        street=data["street"].strip(),
        postal_code=commune.postal_codes[0]
        if data["postal_code"].strip() not in commune.postal_codes
        else data["postal_code"].strip(),
        commune=commune,
        reason=Reason(data["reason"]),
        reason_detail=data["reason_detail"].strip(),
        already_sees_gp=data["already_sees_gp"],
        need_home_visits=data["need_home_visits"],
        need_reduced_mobility=data["need_reduced_mobility"],
        need_chronic_followup=data["need_chronic_followup"],
        language=data["language"].strip(),
        css_ame=data["css_ame"],
        comment=data["comment"].strip(),
        agrees_to_survey=data["agrees_to_survey"],
        # Counted by the indicators: keep it to the flyer's form (pharmacie, site-web...).
        source_tag=re.sub(r"[^a-z0-9]+", "-", data["source_tag"].lower()).strip("-"),
    )


def form_to_payload(form: Mapping[str, str]) -> dict[str, Any]:
    """The HTML form's flat fields (persons-0-first_name...) as the API's JSON shape."""
    # A plain dict of first values: werkzeug's MultiDict raises (and catches) an exception for
    # each absent key, and most of the 6 person blocks are absent.
    form = dict(form.items())
    payload: dict[str, Any] = {}
    for name in _SUBMISSION.fields:
        if name == "persons":
            continue
        if name in _BOOLEANS:
            payload[name] = name in form
        else:
            payload[name] = form.get(name, "")
    persons = [
        {
            "first_name": form.get(f"persons-{i}-first_name", ""),
            "last_name": form.get(f"persons-{i}-last_name", ""),
            "birth_date": form.get(f"persons-{i}-birth_date", ""),
            "ald": f"persons-{i}-ald" in form,
        }
        for i in range(MAX_PERSONS)
    ]
    # The blank blocks after the last one filled in say nothing (and cannot be wrong): leave
    # them out rather than validate them. Earlier blank blocks stay, to keep each index.
    while persons and not any(persons[-1].values()):
        persons.pop()
    payload["persons"] = persons
    return payload
