"""Administration: staff accounts, CPTS settings and the audit trail (/admin).

The instance admin (no territory) manages the CPTS and their admins; a CPTS admin manages the
coordinators and referrers of their CPTS. Coordinators and referrers get a 403 here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    EmailField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, NumberRange, Optional

from geo.communes import gazetteer
from models import Role, Territory
from orientation.auth import Staff
from orientation.blueprints.auth import Typed, keep_through_login
from orientation.db import db_session, territory_session
from orientation.services import audit_trail, staff
from orientation.services.accounts import PasswordTooWeak
from orientation.services.territories import (
    TerritoryError,
    UnknownCommunes,
    all_territories,
    shared_communes,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")
F = TypeVar("F", bound=Callable[..., Any])

ROLE_LABELS = {
    Role.ADMIN: "Administrateur de l'instance",
    Role.CPTS_ADMIN: "Administrateur CPTS",
    Role.COORDINATOR: "Coordinateur",
    Role.REFERRER: "Professionnel orienteur",
}


def admin_required(view: F) -> F:
    """Instance admin or CPTS admin; sets g.user, g.territory (None for the instance admin)
    and g.session (scoped to the CPTS for a CPTS admin)."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = cast(Staff, current_user._get_current_object()).user
        if user.role is Role.ADMIN and user.territory_id is None:
            g.user, g.territory, g.session = user, None, db_session()
        elif user.role is Role.CPTS_ADMIN and user.territory_id is not None:
            g.user = user
            g.session = territory_session(user.territory_id)
            g.territory = g.session.get(Territory, user.territory_id)
        else:
            abort(403)
        return view(*args, **kwargs)

    return cast(F, wrapper)


def _reach(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except staff.NotFound:
        abort(404)
    except staff.NotAllowed:
        abort(403)


POLICY_HINT = "Au moins 12 caractères, lettres et chiffres ou signes mélangés."


class StaffForm(FlaskForm):
    full_name = StringField(
        "Nom complet", validators=[DataRequired("Indiquez le nom."), Length(max=200)]
    )
    email = EmailField(
        "Adresse e-mail",
        validators=[
            DataRequired("Indiquez l'adresse e-mail."),
            Email("Cette adresse e-mail n'est pas valide."),
            Length(max=254),
        ],
    )
    role = SelectField("Rôle", choices=[])
    territory_id = SelectField("CPTS", coerce=int, choices=[])
    profession = StringField("Profession (orienteurs)", validators=[Length(max=80)])
    password = PasswordField(
        "Mot de passe initial",
        validators=[DataRequired("Choisissez un mot de passe."), Length(max=200)],
    )


class PasswordForm(FlaskForm):
    password = PasswordField(
        "Nouveau mot de passe",
        validators=[DataRequired("Choisissez un mot de passe."), Length(max=200)],
    )


def _months(label: str, low: int, high: int) -> IntegerField:
    return IntegerField(
        label,
        validators=[
            InputRequired("Indiquez un nombre."),
            NumberRange(low, high, f"Indiquez un nombre entre {low} et {high}."),
        ],
    )


class SettingsForm(FlaskForm):
    contact_phone = StringField("Téléphone de la coordination", validators=[Length(max=40)])
    contact_email = EmailField(
        "E-mail de la coordination",
        validators=[Optional(), Email("Cette adresse e-mail n'est pas valide."), Length(max=254)],
    )
    postal_address = TextAreaField("Adresse postale", validators=[Length(max=500)])
    dpo_contact = TextAreaField(
        "Délégué à la protection des données (nom et contact)", validators=[Length(max=500)]
    )
    max_distance_km = _months("Distance maximale proposée (km)", 1, 100)
    availability_refresh_months = _months("Rafraîchir les disponibilités tous les (mois)", 1, 24)
    follow_up_days = _months("Relancer le patient après une proposition (jours)", 1, 365)
    retention_closed_months = _months("Demandes closes : anonymiser après (mois)", 1, 60)
    retention_out_of_territory_months = _months(
        "Demandes hors territoire : anonymiser après (mois)", 1, 24
    )
    retention_message_body_months = _months("Contenu des messages : effacer après (mois)", 1, 24)


class TerritoryForm(FlaskForm):
    name = StringField(
        "Nom de la CPTS", validators=[DataRequired("Indiquez le nom."), Length(max=200)]
    )
    communes = TextAreaField(
        "Communes (codes INSEE)",
        validators=[DataRequired("Indiquez au moins un code INSEE."), Length(max=20_000)],
    )


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    since = DateField("Du", validators=[Optional()])
    until = DateField("Au (inclus)", validators=[Optional()])
    action = StringField("Action (ex. login, rights)", validators=[Optional(), Length(max=60)])
    user_id = IntegerField(
        "Utilisateur (n°)",
        validators=[Optional(), NumberRange(1, 2_147_483_647, "Numéro d'utilisateur inconnu.")],
    )
    object_type = StringField("Objet (type)", validators=[Optional(), Length(max=40)])
    object_id = StringField("Objet (n°)", validators=[Optional(), Length(max=40)])


@bp.get("/")
@admin_required
def index() -> ResponseReturnValue:
    users = staff.staff_in_reach(g.session, g.user)
    territories = list(all_territories(g.session)) if g.territory is None else [g.territory]
    return render_template(
        "admin/index.html", users=users, territories=territories, role_labels=ROLE_LABELS
    )


def _staff_form() -> StaffForm:
    form = StaffForm()
    roles = sorted(staff.MANAGEABLE[g.user.role])
    form.role.choices = [SelectChoice(role.value, ROLE_LABELS[role]) for role in roles]
    territories = list(all_territories(g.session)) if g.territory is None else [g.territory]
    form.territory_id.choices = [SelectChoice(str(t.id), t.name) for t in territories]
    return form


@bp.route("/equipe/nouveau", methods=["GET", "POST"])
@admin_required
def new_staff() -> ResponseReturnValue:
    form = _staff_form()
    if form.validate_on_submit():
        new = staff.NewStaff(
            email=form.email.data or "",
            full_name=form.full_name.data or "",
            role=Role(form.role.data),
            password=form.password.data or "",
            territory_id=form.territory_id.data,
            profession=(form.profession.data or "").strip(),
        )
        try:
            user = _reach(
                lambda: staff.create_staff(g.session, g.user, new, ip=request.remote_addr or "")
            )
        except PasswordTooWeak as exc:
            form.password.errors = [f"Mot de passe trop faible : {exc}."]
        except staff.EmailTaken:
            form.email.errors = ["Un compte utilise déjà cette adresse e-mail."]
        else:
            g.session.commit()
            flash(f"Compte créé pour {user.full_name}.", "info")
            return redirect(url_for("admin.index"))
    return render_template("admin/staff_form.html", form=form, hint=POLICY_HINT)


@bp.post("/equipe/<int:user_id>/desactiver")
@admin_required
def deactivate(user_id: int) -> ResponseReturnValue:
    return _set_active(user_id, False)


@bp.post("/equipe/<int:user_id>/reactiver")
@admin_required
def reactivate(user_id: int) -> ResponseReturnValue:
    return _set_active(user_id, True)


def _set_active(user_id: int, active: bool) -> ResponseReturnValue:
    if not FlaskForm().validate_on_submit():  # CSRF only
        abort(400)
    user = _reach(lambda: staff.user_in_reach(g.session, g.user, user_id))
    staff.set_active(g.session, g.user, user, active, ip=request.remote_addr or "")
    g.session.commit()
    flash(f"Compte {'réactivé' if active else 'désactivé'} : {user.full_name}.", "info")
    return redirect(url_for("admin.index"))


@bp.route("/equipe/<int:user_id>/mot-de-passe", methods=["GET", "POST"])
@admin_required
def reset_password(user_id: int) -> ResponseReturnValue:
    user = _reach(lambda: staff.user_in_reach(g.session, g.user, user_id))
    form = PasswordForm()
    if form.validate_on_submit():
        try:
            staff.reset_password(
                g.session, g.user, user, form.password.data or "", ip=request.remote_addr or ""
            )
        except PasswordTooWeak as exc:
            form.password.errors = [f"Mot de passe trop faible : {exc}."]
        else:
            g.session.commit()
            flash(f"Nouveau mot de passe enregistré pour {user.full_name}.", "info")
            return redirect(url_for("admin.index"))
    return render_template("admin/password.html", form=form, member=user, hint=POLICY_HINT)


@bp.route("/cpts/<int:territory_id>/parametres", methods=["GET", "POST"])
@admin_required
def settings(territory_id: int) -> ResponseReturnValue:
    territory = _reach(lambda: staff.territory_in_reach(g.session, g.user, territory_id))
    form = SettingsForm(obj=None if request.method == "POST" else territory)
    if form.validate_on_submit():
        values = staff.TerritorySettings(
            contact_phone=(form.contact_phone.data or "").strip(),
            contact_email=(form.contact_email.data or "").strip(),
            postal_address=(form.postal_address.data or "").strip(),
            dpo_contact=(form.dpo_contact.data or "").strip(),
            max_distance_km=form.max_distance_km.data or 0,
            availability_refresh_months=form.availability_refresh_months.data or 0,
            follow_up_days=form.follow_up_days.data or 0,
            retention_closed_months=form.retention_closed_months.data or 0,
            retention_out_of_territory_months=form.retention_out_of_territory_months.data or 0,
            retention_message_body_months=form.retention_message_body_months.data or 0,
        )
        staff.update_settings(g.session, g.user, territory, values, ip=request.remote_addr or "")
        g.session.commit()
        flash("Paramètres enregistrés.", "info")
        return redirect(url_for("admin.settings", territory_id=territory.id))
    return render_template("admin/settings.html", form=form, territory=territory)


@admin_required
def _settings_again(notice: str, values: Typed, territory_id: int) -> str:
    territory = _reach(lambda: staff.territory_in_reach(g.session, g.user, territory_id))
    return render_template("admin/settings.html", form=SettingsForm(formdata=values),
                           territory=territory, notice=notice)  # fmt: skip


@bp.route("/cpts/nouvelle", methods=["GET", "POST"])
@admin_required
def new_territory() -> ResponseReturnValue:
    if g.territory is not None:
        abort(403)  # only the instance admin adds a CPTS
    form = TerritoryForm()
    if form.validate_on_submit():
        try:
            territory = staff.create_territory(
                g.session,
                g.user,
                gazetteer(),
                form.name.data or "",
                form.communes.data or "",
                ip=request.remote_addr or "",
            )
        except UnknownCommunes as exc:
            form.communes.errors = [f"Codes INSEE inconnus : {', '.join(exc.codes[:20])}."]
        except TerritoryError as exc:
            if "already exists" in str(exc):
                form.name.errors = ["Une CPTS porte déjà ce nom."]
            elif "slug" in str(exc):
                form.name.errors = ["Ajoutez au nom des lettres ou des chiffres."]
            else:
                form.communes.errors = ["Indiquez au moins un code INSEE."]
        else:
            g.session.commit()
            flash(f"{territory.name} est créée : ajoutez son administrateur.", "success")
            names = gazetteer().by_insee
            for other, codes in shared_communes(g.session, territory).items():
                communes = ", ".join(names[c].name if c in names else c for c in codes[:10])
                more = f" et {len(codes) - 10} autres" if len(codes) > 10 else ""
                flash(
                    f"Communes aussi dans le territoire de {other} : {communes}{more}. Une "
                    "demande de ces communes ira à la CPTS où elle est déposée ; vérifiez les "
                    "deux territoires.",
                    "error",
                )
            return redirect(url_for("admin.new_staff"))
    return render_template("admin/territory_form.html", form=form)


@admin_required
def _territory_again(notice: str, values: Typed) -> str:
    if g.territory is not None:
        abort(403)
    return render_template(
        "admin/territory_form.html", form=TerritoryForm(formdata=values), notice=notice
    )


# A CPTS's settings or a new CPTS's communes typed past the end of the session are not lost
# (see keep_through_login). The forms with a password are not: it would ride in the page.
keep_through_login(bp, {"admin.settings": _settings_again, "admin.new_territory": _territory_again})


@bp.get("/audit")
@admin_required
def audit_view() -> ResponseReturnValue:
    form = AuditFilterForm(request.args)
    entries: list[Any] = []
    if form.validate():
        since = form.since.data
        until = form.until.data
        criteria = audit_trail.AuditFilter(
            territory_id=g.territory.id if g.territory is not None else None,
            since=datetime.combine(since, time(), UTC) if since else None,
            until=datetime.combine(until, time(), UTC) + timedelta(days=1) if until else None,
            action=(form.action.data or "").strip(),
            user_id=form.user_id.data,
            object_type=(form.object_type.data or "").strip(),
            object_id=(form.object_id.data or "").strip(),
        )
        entries = list(audit_trail.search(g.session, criteria))
    territory_id = g.territory.id if g.territory is not None else None
    users = audit_trail.users_by_id(g.session, {e.user_id for e in entries if e.user_id})
    return render_template(
        "admin/audit.html",
        form=form,
        entries=entries,
        users=users,
        actions=audit_trail.known_actions(g.session, territory_id),
        limit=audit_trail.PAGE_SIZE,
    )
