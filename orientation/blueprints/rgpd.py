"""RGPD desk for coordinators: process a rights request, and the register of processing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Regexp

from geo.communes import gazetteer
from models import Channel, Request, Role, Territory, utcnow
from orientation.auth import staff_required
from orientation.blueprints.auth import Typed, keep_through_login
from orientation.blueprints.intake_common import settings, signer
from orientation.services import audit
from orientation.services.contact import display_phone
from orientation.services.intake import acknowledgement_channel
from orientation.services.intake_validation import LIMITS
from orientation.services.patient_link_renewal import (
    AlreadyRenewed,
    RenewalRefused,
    RenewedLink,
    renew_private_link,
)
from orientation.services.references import normalise_reference
from orientation.services.register import ProcessingRegister, build_register
from orientation.services.rights import (
    RIGHT_LABELS,
    RightKind,
    find_request,
    process_rights_request,
)
from orientation.services.rights_access import export_request_data
from orientation.services.rights_rectification import (
    AlreadyAnonymised,
    Correction,
    InvalidCorrection,
    channel_switch_notice,
    correct_request,
)

bp = Blueprint("rgpd", __name__, url_prefix="/espace")
STAFF = (Role.COORDINATOR, Role.CPTS_ADMIN)


@bp.app_template_global()
def processing_register(territory: Territory) -> ProcessingRegister:
    """For templates/rgpd/_notice.html: the notice and the register share one source."""
    return build_register(territory)


class FindForm(FlaskForm):
    reference = StringField(
        "Référence de la demande",
        validators=[DataRequired("Indiquez la référence (ex. K7QM-4T2X)."), Length(max=20)],
    )


class ProcessForm(FlaskForm):
    kind = SelectField(
        "Droit exercé",
        choices=[SelectChoice(kind.value, label) for kind, label in RIGHT_LABELS.items()],
    )
    note = TextAreaField(
        "Comment la demande a été reçue (date, canal)", validators=[Length(max=500)]
    )
    confirm = BooleanField("Je confirme (obligatoire pour un effacement, définitif)")


CONFIRM_RENEWAL = "Cochez la confirmation : l'ancien lien ne fonctionnera plus."


class RenewLinkForm(FlaskForm):
    # The link version the page was shown with: a second post of that page (a double click,
    # a reload) finds the version raised already and sends nothing more.
    shown_version = HiddenField(validators=[DataRequired(), Regexp(r"^\d{1,9}$")])
    confirm = BooleanField(
        "Je confirme : l'ancien lien privé de la personne ne fonctionnera plus.",
        validators=[DataRequired(CONFIRM_RENEWAL)],
    )


def _renew_form(found: Request) -> RenewLinkForm:
    return RenewLinkForm(formdata=None, data={"shown_version": str(found.link_version)})


# How the new link went, for the notice after the button. Not the number nor the address: a
# flash travels in the session cookie, which the browser can read (the page shows them below).
RENEWED_BY = {
    Channel.SMS: "Nouveau lien privé envoyé par SMS au portable de la demande ; "
    "l'ancien ne fonctionne plus.",
    Channel.EMAIL: "Nouveau lien privé envoyé par e-mail à l'adresse de la demande ; "
    "l'ancien ne fonctionne plus.",
}


class PersonCorrectForm(Form):
    """One person of the household, as rectified (checked by correct_request)."""

    first_name = StringField("Prénom", render_kw={"maxlength": LIMITS["first_name"]})
    last_name = StringField("Nom", render_kw={"maxlength": LIMITS["last_name"]})
    birth_date = StringField("Date de naissance", render_kw={"maxlength": 10})


class CorrectForm(FlaskForm):
    phone = StringField("Téléphone", validators=[Length(max=40)])
    email = EmailField("E-mail", validators=[Length(max=254)])
    street = StringField("Adresse (rue)", validators=[Length(max=200)])
    best_time = StringField("Moment préféré pour être appelé", validators=[Length(max=100)])
    # In the order of found.persons: entry i is the request's i-th person.
    persons = FieldList(FormField(PersonCorrectForm))


def _person_data(found: Request) -> list[dict[str, str]]:
    return [
        {
            "first_name": person.first_name,
            "last_name": person.last_name,
            "birth_date": person.birth_date.strftime("%d/%m/%Y") if person.birth_date else "",
        }
        for person in found.persons
    ]


def _correct_form(
    found: Request, typed: Typed | None = None, *, posted: bool = False
) -> CorrectForm:
    """The rectification form: as stored, or filled with what was typed (`typed`, or the
    request's form when `posted`)."""
    if typed is None and not posted:
        stored = {
            "phone": display_phone(found.phone),
            "email": found.email,
            "street": found.street,
            "best_time": found.best_time,
            "persons": _person_data(found),
        }
        return CorrectForm(formdata=None, data=stored)
    form = CorrectForm() if typed is None else CorrectForm(formdata=typed)
    # A form posted without some persons (an older page) shows them as stored.
    for person in _person_data(found)[len(form.persons.entries) :]:
        form.persons.append_entry(person)
    return form


def _correction(form: CorrectForm, found: Request) -> Correction:
    """What the form asks to correct; person fields not posted stay as they are."""
    pairs = list(zip(found.persons, form.persons.entries, strict=False))
    return Correction(
        phone=form.phone.data or "",
        email=form.email.data or "",
        street=form.street.data or "",
        best_time=form.best_time.data or "",
        names={
            person.id: (entry.first_name.data or "", entry.last_name.data or "")
            for person, entry in pairs
        },
        birth_dates={person.id: entry.birth_date.data or "" for person, entry in pairs},
    )


def _show_refusals(form: CorrectForm, found: Request, exc: InvalidCorrection) -> None:
    """Each refusal under its field: a person's under that person's field."""
    position = {person.id: i for i, person in enumerate(found.persons)}
    for error in exc.errors:
        owner: Form = form
        if error.person_id is not None and error.person_id in position:
            owner = form.persons.entries[position[error.person_id]].form
        # A person not of the request (a forged form) has no field of its own: the first one.
        target = owner[error.field] if error.field in owner else form.phone
        target.errors = [*target.errors, error.message]


@dataclass(frozen=True)
class HeldRow:
    """One line of "Données détenues": its French label, how its value reads, the value."""

    label: str
    kind: str
    value: Any


# The request's data as the desk shows it (the JSON copy keeps the keys and raw values):
# key -> (label, kind). A key of the copy missing here still shows, under its key.
HELD_FIELDS: dict[str, tuple[str, str]] = {
    "reference": ("Référence", "text"),
    "status": ("Statut", "status"),
    "source": ("Origine", "source"),
    "created_at": ("Reçue le", "datetime"),
    "closed_at": ("Clôturée le", "datetime"),
    "anonymised_at": ("Anonymisée le", "datetime"),
    "processing_limited_at": ("Traitement limité depuis le", "datetime"),
    "consent_at": ("Accord pour le traitement des données le", "datetime"),
    "phone": ("Téléphone", "phone"),
    "email": ("E-mail", "text"),
    "preferred_channel": ("Canal préféré", "channel"),
    "best_time": ("Moment préféré pour être appelé", "text"),
    "street": ("Adresse (rue)", "text"),
    "postal_code": ("Code postal", "text"),
    "commune_insee": ("Commune", "commune"),
    "reason": ("Raison de la demande", "reason"),
    "reason_detail": ("Précisions sur la raison", "text"),
    "already_sees_gp": ("Voit déjà un médecin généraliste non déclaré", "bool"),
    "need_home_visits": ("Besoin de visites à domicile", "bool"),
    "need_reduced_mobility": ("Mobilité réduite", "bool"),
    "need_chronic_followup": ("Suivi d'une maladie chronique", "bool"),
    "language": ("Langue parlée", "text"),
    "css_ame": ("CSS ou AME", "bool"),
    "is_priority": ("Prioritaire", "bool"),
    "comment": ("Commentaire", "text"),
    "agrees_to_survey": ("Accepte l'enquête de satisfaction", "bool"),
}


def _held(found: Request, data: dict[str, Any]) -> list[HeldRow]:
    """The request's lines of the copy, readable: values from the request itself (dates as
    datetimes, for the template to say in Paris time), the commune by its name."""
    rows = []
    for key, copied in data["request"].items():
        label, kind = HELD_FIELDS.get(key, (key, "text"))
        value = getattr(found, key, copied)
        if kind == "commune" and value:
            commune = gazetteer().get(value)
            value = f"{commune.name} ({value})" if commune else value
        rows.append(HeldRow(label, kind, value))
    return rows


def _rights_page(found: Request, data: dict[str, Any], **forms: Any) -> str:
    forms.setdefault("renew", _renew_form(found))
    # The channel the new link would take, said by the button before it is pressed.
    renew_channel = acknowledgement_channel(found.phone, found.email, found.preferred_channel)
    return render_template(
        "rgpd/rights_request.html", found=found, data=data, held=_held(found, data),
        renew_channel=renew_channel, **forms,
    )  # fmt: skip


def _process_form(found: Request, typed: Typed | None = None) -> ProcessForm:
    """The rights one can record for this request: limiting it, or lifting its limitation
    (filled with what was typed, if given; else with the request's form)."""
    form = ProcessForm() if typed is None else ProcessForm(formdata=typed)
    left_out = RightKind.LIMITATION if found.processing_limited_at else RightKind.LIMITATION_LIFTED
    form.kind.choices = [
        SelectChoice(kind.value, label) for kind, label in RIGHT_LABELS.items() if kind != left_out
    ]
    return form


def _ip() -> str:
    return request.remote_addr or ""


def _audit_not_found(object_id: int | str, **details: Any) -> None:
    """A request the desk cannot see (another CPTS's, or none): ids and references may be
    probed, as on /espace/demandes/<id>."""
    audit.record(
        g.session,
        "request.not_found",
        territory_id=g.territory.id,
        user_id=g.user.id,
        object_type="request",
        object_id=object_id,
        ip=_ip(),
        page="rights",
        **details,
    )
    g.session.commit()


def _request_or_404(request_id: int) -> Request:
    found = g.session.get(Request, request_id)  # scoped: another CPTS's id is a 404
    if found is None:
        _audit_not_found(request_id)
        abort(404)
    return found


@bp.route("/droits", methods=["GET", "POST"])
@staff_required(*STAFF)
def rights_desk() -> ResponseReturnValue:
    form = FindForm()
    if form.validate_on_submit():
        found = find_request(g.session, form.reference.data or "")
        if found is not None:
            return redirect(url_for("rgpd.rights_request", request_id=found.id))
        _audit_not_found("", reference=normalise_reference(form.reference.data or "")[:20])
        form.reference.errors = ["Aucune demande de votre CPTS n'a cette référence."]
    return render_template("rgpd/desk.html", form=form)


@bp.get("/droits/<int:request_id>")
@staff_required(*STAFF)
def rights_request(request_id: int) -> ResponseReturnValue:
    found = _request_or_404(request_id)
    return _rights_page(
        found, _read(found), form=_process_form(found), correct=_correct_form(found)
    )


def _read(found: Request) -> dict[str, Any]:
    """What is held of the request, its reading audited."""
    data = export_request_data(g.session, found)
    audit.record(
        g.session,
        "request.read",
        territory_id=found.territory_id,
        user_id=g.user.id,
        object_type="request",
        object_id=found.id,
        ip=_ip(),
        page="rights",
    )
    g.session.commit()
    return data


@bp.get("/droits/<int:request_id>/donnees.json")
@staff_required(*STAFF)
def rights_export(request_id: int) -> ResponseReturnValue:
    found = _request_or_404(request_id)
    data = export_request_data(g.session, found)
    process_rights_request(
        g.session, found, RightKind.ACCESS, utcnow(), user_id=g.user.id, ip=_ip()
    )
    g.session.commit()
    return Response(
        json.dumps(data, ensure_ascii=False, indent=2),
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="demande-{found.reference}.json"'},
    )


@bp.post("/droits/<int:request_id>")
@staff_required(*STAFF)
def rights_process(request_id: int) -> ResponseReturnValue:
    found = _request_or_404(request_id)
    form = _process_form(found)
    if not form.validate_on_submit():
        abort(400)
    kind = RightKind(form.kind.data)
    if kind is RightKind.ACCESS:
        return redirect(url_for("rgpd.rights_export", request_id=found.id))
    if kind is RightKind.RECTIFICATION:
        flash("Corrigez les champs ci-dessous puis enregistrez.", "info")
        return redirect(url_for("rgpd.rights_request", request_id=found.id) + "#rectifier")
    if kind is RightKind.ERASURE and not form.confirm.data:
        flash("Cochez la confirmation : l'effacement est définitif.", "error")
        return redirect(url_for("rgpd.rights_request", request_id=found.id))
    process_rights_request(
        g.session, found, kind, utcnow(), user_id=g.user.id, ip=_ip(), note=form.note.data or ""
    )
    g.session.commit()
    flash(f"Demande traitée : {RIGHT_LABELS[kind]}.", "success")
    return redirect(url_for("rgpd.rights_request", request_id=found.id))


@bp.post("/droits/<int:request_id>/rectifier")
@staff_required(*STAFF)
def rights_correct(request_id: int) -> ResponseReturnValue:
    found = _request_or_404(request_id)
    form = _correct_form(found, posted=True)
    if form.validate_on_submit():
        channel_before = found.preferred_channel
        try:
            changed = correct_request(
                g.session, found, _correction(form, found), utcnow(), actor_user_id=g.user.id
            )
        except InvalidCorrection as exc:
            _show_refusals(form, found, exc)
        except AlreadyAnonymised:
            abort(410)
        else:
            process_rights_request(
                g.session,
                found,
                RightKind.RECTIFICATION,
                utcnow(),
                user_id=g.user.id,
                ip=_ip(),
                note=", ".join(changed),
                fields=changed,
            )
            g.session.commit()
            message = "Rectification enregistrée."
            if "preferred_channel" in changed:
                message += " " + channel_switch_notice(channel_before, found)
            flash(message, "success")
            return redirect(url_for("rgpd.rights_request", request_id=found.id))
    return _rights_page(found, _read(found), form=_process_form(found), correct=form), 400


@bp.post("/droits/<int:request_id>/nouveau-lien")
@staff_required(*STAFF)
def rights_renew_link(request_id: int) -> ResponseReturnValue:
    """Send the person a new private link; the old one stops opening their request."""
    found = _request_or_404(request_id)
    form = RenewLinkForm()
    back = redirect(url_for("rgpd.rights_request", request_id=found.id) + "#lien-prive", 303)
    if not form.validate_on_submit():
        flash(CONFIRM_RENEWAL, "error")
        return back
    try:
        renewed = renew_private_link(
            g.session, found, shown_version=int(form.shown_version.data or 0), signer=signer(),
            base_url=settings().base_url, now=utcnow(), user_id=g.user.id, ip=_ip(),
        )  # fmt: skip
    except RenewalRefused as refused:
        g.session.rollback()
        flash(str(refused), "info" if isinstance(refused, AlreadyRenewed) else "error")
        return back
    if renewed.channel is None:
        return _link_to_read_out(found, renewed)
    flash(RENEWED_BY[renewed.channel], "success")
    return back


def _link_to_read_out(found: Request, renewed: RenewedLink) -> str:
    """No mobile nor e-mail: the new link, shown this once (in this answer, never stored in
    the session nor a flash) for the coordinator to read out or write down for the person."""
    return render_template("rgpd/link_renewed.html", found=found, link=renewed.link)


@bp.get("/droits/<int:request_id>/nouveau-lien")
@staff_required(*STAFF)
def back_from_renew_link(request_id: int) -> ResponseReturnValue:
    """Reloading the address of the button (after the page of the link to read out) goes back
    to the request's rights page: no 405, and no second link."""
    return redirect(url_for("rgpd.rights_request", request_id=request_id), code=303)


@bp.get("/registre")
@staff_required(*STAFF)
def register() -> ResponseReturnValue:
    return render_template(
        "rgpd/register.html", register=build_register(g.territory), territory=g.territory
    )


def _rights_again(typed_in: str) -> Callable[..., str]:
    """The rights page with what was typed in one of its forms (see keep_through_login)."""

    @staff_required(*STAFF)
    def again(notice: str, values: Typed, request_id: int) -> str:
        found = _request_or_404(request_id)
        return _rights_page(
            found,
            _read(found),
            form=_process_form(found, values if typed_in == "process" else None),
            correct=_correct_form(found, values if typed_in == "correct" else None),
            notice=notice,
        )

    return again


# A rectification or a rights request noted past the end of the session is not lost.
keep_through_login(bp, {
    "rgpd.rights_process": _rights_again("process"),
    "rgpd.rights_correct": _rights_again("correct"),
})  # fmt: skip
