"""WTForms of the doctor screens (coordinator form, self-service form, placing, uploads)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    EmailField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    NumberRange,
    Optional,
    StopValidation,
    ValidationError,
)
from wtforms.widgets import TextInput

from models import Accepting, Doctor, VolunteerStatus, utcnow
from orientation.services.contact import (
    InvalidEmail,
    InvalidPhone,
    is_mobile,
    normalise_email,
    normalise_phone,
)
from orientation.services.doctor_availability import availability_errors, paris_date
from orientation.services.doctor_refresh import AvailabilityAnswer
from orientation.services.doctor_sites import SiteInput
from orientation.services.doctors import DoctorError, DoctorInput, check_rpps

ACCEPTING_CHOICES = [
    SelectChoice(Accepting.YES.value, "Oui, j'accepte de nouveaux patients"),
    SelectChoice(Accepting.PAUSED.value, "Pas pour le moment, jusqu'à une date"),
    SelectChoice(Accepting.NO.value, "Je ne prends plus de nouveaux patients"),
]
VOLUNTEER_CHOICES = [
    SelectChoice(VolunteerStatus.VOLUNTEER.value, "Volontaire"),
    SelectChoice(VolunteerStatus.NOT_YET.value, "Pas encore volontaire"),
    SelectChoice(VolunteerStatus.DECLINED.value, "Invité, a refusé"),
    SelectChoice(VolunteerStatus.WITHDRAWN.value, "Ne participe plus"),
]
CHANNEL_CHOICES = [SelectChoice("email", "E-mail"), SelectChoice("sms", "SMS")]


class FrenchDecimalField(DecimalField):
    """A decimal typed the French way ("7,5") or with a point, in a text input.

    Not type="number": without JavaScript it refuses a comma, and Chromium reads a typed
    "7,5" as 75. The template asks phones for the decimal keypad (inputmode="decimal").
    What was typed is shown again as typed when the form comes back with an error.
    """

    widget = TextInput()

    def __init__(
        self, *args: Any, invalid_message: str = "Indiquez un nombre.", **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.invalid_message = invalid_message

    def process_formdata(self, valuelist: list[Any]) -> None:
        if valuelist and isinstance(valuelist[0], str):
            valuelist = [valuelist[0].strip().replace(" ", "").replace(",", ".")]
        try:
            super().process_formdata(valuelist)
        except ValueError:
            # WTForms says it in English ("Not a valid decimal value.").
            raise ValueError(self.invalid_message) from None

    def pre_validate(self, form: Any) -> None:
        # Something typed that is not a number: say that alone, not also the range (NumberRange
        # sees no value). Left blank, Optional() still clears the error.
        if self.process_errors and self.raw_data and str(self.raw_data[0]).strip():
            raise StopValidation()

    def _value(self) -> str:
        if self.raw_data:
            return str(self.raw_data[0])
        if isinstance(self.data, Decimal | float | int):
            return f"{float(self.data):g}".replace(".", ",")
        return ""


class AvailabilityFields(FlaskForm):
    """The availability answer; `kept` is the doctor as stored (see availability_errors)."""

    def __init__(self, *args: Any, kept: Doctor | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept = kept

    accepting = RadioField(
        "Acceptez-vous de nouveaux patients ?",
        choices=ACCEPTING_CHOICES,
        # No answer is pre-selected on an invitation: the choice check says it in French
        # (a DataRequired here would print the same message twice).
        invalid_choice_message="Choisissez une réponse.",
    )
    paused_until = DateField(
        "En pause jusqu'au",
        validators=[Optional()],
        render_kw={"autocomplete": "off"},
    )
    capacity_left = IntegerField(
        "Combien de nouveaux patients d'ici six mois ?",
        default=0,
        validators=[
            Optional(),
            NumberRange(0, 500, "Indiquez un nombre entre 0 et 500."),
        ],
    )
    accepts_under_6 = BooleanField("Enfants de moins de 6 ans", default=True)
    accepts_elderly_dependent = BooleanField("Personnes âgées et dépendantes", default=True)
    accepts_ald_followup = BooleanField("Suivi d'une affection longue durée (ALD)", default=True)
    home_visits = BooleanField("Je fais des visites à domicile")
    # The same field on the doctor's own form and on the coordinator's card: "7,5" and "7.5"
    # are read alike on both.
    home_visit_radius_km = FrenchDecimalField(
        "Jusqu'à combien de kilomètres ?",
        default=0,
        validators=[Optional(), NumberRange(0, 100, "Indiquez un rayon entre 0 et 100 km.")],
        invalid_message="Indiquez un rayon en kilomètres, par exemple 7,5.",
    )

    def validate(self, extra_validators: Any = None) -> bool:
        ok = bool(super().validate(extra_validators))
        # Optional() ends the date's own checks when it is empty, so the rule lives here.
        if self.accepting.data == Accepting.PAUSED.value and self.paused_until.data is None:
            if not self.paused_until.errors:
                self.paused_until.errors = ["Indiquez jusqu'à quelle date (JJ/MM/AAAA)."]
            ok = False
        if self.accepting.data not in {a.value for a in Accepting}:
            return ok
        radius = self.home_visit_radius_km.data
        errors = availability_errors(
            Accepting(self.accepting.data),
            self.paused_until.data,
            self.capacity_left.data,
            bool(self.home_visits.data),
            float(radius) if radius is not None else None,
            today=paris_date(utcnow()),
            kept=self.kept,
        )
        for name, message in errors.items():
            field = self[name]
            if not field.errors:
                field.errors = [message]
            ok = False
        return ok

    def answer(self) -> AvailabilityAnswer:
        return AvailabilityAnswer(
            accepting=Accepting(self.accepting.data),
            paused_until=self.paused_until.data,
            capacity_left=int(self.capacity_left.data or 0),
            accepts_under_6=bool(self.accepts_under_6.data),
            accepts_elderly_dependent=bool(self.accepts_elderly_dependent.data),
            accepts_ald_followup=bool(self.accepts_ald_followup.data),
            home_visits=bool(self.home_visits.data),
            home_visit_radius_km=float(self.home_visit_radius_km.data or 0),
        )


class SelfServiceForm(AvailabilityFields):
    """The doctor's one-screen form (the fields above only)."""


def _phone(_form: FlaskForm, field: TelField) -> None:
    if field.data:
        try:
            field.data = normalise_phone(field.data)
        except InvalidPhone as exc:
            raise ValidationError(str(exc)) from None


def _rpps(_form: FlaskForm, field: StringField) -> None:
    # Checked with the other fields, so that a wrong key shows in the same round as the rest
    # (the service checks it again, for the imports).
    if field.data:
        try:
            check_rpps(field.data)
        except DoctorError as exc:
            raise ValidationError(exc.message) from None


def _email(_form: FlaskForm, field: EmailField) -> None:
    if field.data:
        try:
            field.data = normalise_email(field.data)
        except InvalidEmail as exc:
            raise ValidationError(str(exc)) from None


class DoctorForm(AvailabilityFields):
    """The coordinator's form: identity, practice, contact, availability, note."""

    rpps = StringField(
        "Numéro RPPS",
        validators=[DataRequired("Indiquez le numéro RPPS (11 chiffres)."), _rpps],
    )
    last_name = StringField("Nom", validators=[DataRequired("Indiquez le nom du médecin.")])
    first_name = StringField("Prénom")
    practice_address = StringField("Adresse du cabinet")
    postal_code = StringField("Code postal")
    commune = StringField("Commune")
    lat = DecimalField("Latitude", places=6, validators=[Optional()])
    lon = DecimalField("Longitude", places=6, validators=[Optional()])
    phone = TelField("Téléphone", validators=[Optional(), _phone])
    email = EmailField("E-mail", validators=[Optional(), _email])
    preferred_channel = SelectField("Canal préféré pour les rappels", choices=CHANNEL_CHOICES)
    volunteer_status = SelectField("Participation", choices=VOLUNTEER_CHOICES)
    languages = StringField("Langues parlées (séparées par des ;)")
    step_free_access = BooleanField("Cabinet accessible de plain-pied")
    coordinator_note = TextAreaField("Note pour la coordination")

    def validate_lon(self, field: DecimalField) -> None:
        if (self.lat.data is None) != (field.data is None):
            raise ValidationError("Indiquez la latitude et la longitude, ou aucune des deux.")

    def validate_preferred_channel(self, field: SelectField) -> None:
        # An SMS to a landline is accepted by the provider and never arrives: the doctor
        # would be asked for nothing while a cascade waits for their answer.
        if field.data != "sms" or self.phone.errors:
            return
        if not self.phone.data or not is_mobile(self.phone.data):
            raise ValidationError("Pour recevoir des SMS, indiquez un numéro de portable.")

    def to_input(self) -> DoctorInput:
        answer = self.answer()
        return DoctorInput(
            rpps=self.rpps.data or "",
            first_name=(self.first_name.data or "").strip(),
            last_name=(self.last_name.data or "").strip(),
            practice_address=(self.practice_address.data or "").strip(),
            postal_code=(self.postal_code.data or "").strip(),
            commune=(self.commune.data or "").strip(),
            lat=float(self.lat.data) if self.lat.data is not None else None,
            lon=float(self.lon.data) if self.lon.data is not None else None,
            phone=self.phone.data or "",
            email=self.email.data or "",
            preferred_channel=self.preferred_channel.data or "email",
            volunteer_status=VolunteerStatus(self.volunteer_status.data),
            accepting=answer.accepting,
            paused_until=answer.paused_until if answer.accepting is Accepting.PAUSED else None,
            capacity_left=answer.capacity_left,
            accepts_under_6=answer.accepts_under_6,
            accepts_elderly_dependent=answer.accepts_elderly_dependent,
            accepts_ald_followup=answer.accepts_ald_followup,
            home_visits=answer.home_visits,
            home_visit_radius_km=answer.home_visit_radius_km if answer.home_visits else 0.0,
            languages=(self.languages.data or "").strip(),
            step_free_access=bool(self.step_free_access.data),
            coordinator_note=(self.coordinator_note.data or "").strip(),
        )


class PlaceForm(FlaskForm):
    # Own ids: this form sits on the doctor's page next to the card's lat/lon fields, and
    # each label must point to its own field. The names stay lat/lon (the map posts them).
    lat = DecimalField(
        "Latitude",
        id="place-lat",
        places=6,
        validators=[DataRequired("Indiquez la latitude.")],
    )
    lon = DecimalField(
        "Longitude",
        id="place-lon",
        places=6,
        validators=[DataRequired("Indiquez la longitude.")],
    )


class UploadForm(FlaskForm):
    file = FileField("Fichier", validators=[FileRequired("Choisissez un fichier.")])


class SiteForm(FlaskForm):
    """A secondary practice site (the main practice is on the doctor's own form)."""

    site_address = StringField("Adresse du site")
    site_postal_code = StringField("Code postal")
    site_commune = StringField("Commune")
    site_lat = DecimalField("Latitude", places=6, validators=[Optional()])
    site_lon = DecimalField("Longitude", places=6, validators=[Optional()])

    def to_input(self) -> SiteInput:
        return SiteInput(
            address=(self.site_address.data or "").strip(),
            postal_code=(self.site_postal_code.data or "").strip(),
            commune=(self.site_commune.data or "").strip(),
            lat=float(self.site_lat.data) if self.site_lat.data is not None else None,
            lon=float(self.site_lon.data) if self.site_lon.data is not None else None,
        )
