"""RGPD desk for coordinators: process a rights request, and the register of processing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import (
    BooleanField,
    EmailField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length

from models import Request, Role, Territory, utcnow
from orientation.auth import staff_required
from orientation.blueprints.auth import Typed, keep_through_login
from orientation.services import audit
from orientation.services.register import ProcessingRegister, build_register
from orientation.services.rights import (
    RIGHT_LABELS,
    AlreadyAnonymised,
    Correction,
    InvalidCorrection,
    RightKind,
    correct_request,
    export_request_data,
    process_rights_request,
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


class CorrectForm(FlaskForm):
    phone = StringField("Téléphone", validators=[Length(max=40)])
    email = EmailField("E-mail", validators=[Length(max=254)])
    street = StringField("Adresse (rue)", validators=[Length(max=200)])
    best_time = StringField("Moment préféré pour être appelé", validators=[Length(max=100)])


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


def _request_or_404(request_id: int) -> Request:
    found = g.session.get(Request, request_id)  # scoped: another CPTS's id is a 404
    if found is None:
        abort(404)
    return found


@bp.route("/droits", methods=["GET", "POST"])
@staff_required(*STAFF)
def rights_desk() -> ResponseReturnValue:
    form = FindForm()
    if form.validate_on_submit():
        reference = (form.reference.data or "").strip().upper()
        found = g.session.scalar(select(Request).where(Request.reference == reference))
        if found is not None:
            return redirect(url_for("rgpd.rights_request", request_id=found.id))
        form.reference.errors = ["Aucune demande de votre CPTS n'a cette référence."]
    return render_template("rgpd/desk.html", form=form)


@bp.get("/droits/<int:request_id>")
@staff_required(*STAFF)
def rights_request(request_id: int) -> ResponseReturnValue:
    found = _request_or_404(request_id)
    data = _read(found)
    return render_template(
        "rgpd/rights_request.html",
        found=found,
        data=data,
        form=_process_form(found),
        correct=CorrectForm(obj=found),
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
    form = CorrectForm()
    if form.validate_on_submit():
        correction = Correction(
            phone=form.phone.data or "",
            email=form.email.data or "",
            street=form.street.data or "",
            best_time=form.best_time.data or "",
        )
        try:
            changed = correct_request(
                g.session, found, correction, utcnow(), actor_user_id=g.user.id
            )
        except InvalidCorrection as exc:
            getattr(form, exc.field, form.phone).errors = [exc.message]
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
            )
            g.session.commit()
            flash("Rectification enregistrée.", "success")
            return redirect(url_for("rgpd.rights_request", request_id=found.id))
    data = export_request_data(g.session, found)
    return render_template(
        "rgpd/rights_request.html",
        found=found,
        data=data,
        form=_process_form(found),
        correct=form,
    ), 400


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
        return render_template(
            "rgpd/rights_request.html",
            found=found,
            data=_read(found),
            form=_process_form(found, values if typed_in == "process" else None),
            correct=CorrectForm(formdata=values)
            if typed_in == "correct"
            else CorrectForm(formdata=None, obj=found),
            notice=notice,
        )

    return again


# A rectification or a rights request noted past the end of the session is not lost.
keep_through_login(bp, {
    "rgpd.rights_process": _rights_again("process"),
    "rgpd.rights_correct": _rights_again("correct"),
})  # fmt: skip
