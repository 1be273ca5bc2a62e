"""Coordinator screens for a doctor's secondary sites and for inviting 'not yet' doctors.

Every POST carries a CSRF token (CSRFProtect checks them all before the view runs).

Sites: /espace/medecins/<id>/sites (add), /sites/<site> (edit), /sites/<site>/placer (place by
coordinates or a map click), /sites/<site>/supprimer. Invitations: /espace/medecins/<id>/inviter
(one doctor) and /espace/medecins/inviter (every 'not yet volunteer' doctor with a contact).
"""

from __future__ import annotations

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from geo.communes import gazetteer
from models import Doctor, DoctorSite, LocationPrecision, Role, utcnow
from orientation.auth import staff_required
from orientation.blueprints.doctor_forms import PlaceForm, SiteForm
from orientation.services import audit
from orientation.services.doctor_invitations import NotInvitable, invite_all, invite_doctor
from orientation.services.doctor_refresh import availability_link
from orientation.services.doctor_sites import (
    add_site,
    place_site,
    remove_site,
    sites_of,
    update_site,
)
from orientation.services.doctors import DoctorError

bp = Blueprint("doctor_sites", __name__, url_prefix="/espace/medecins")
STAFF = (Role.COORDINATOR, Role.CPTS_ADMIN)


def _actor() -> str:
    return str(g.user.full_name or g.user.email)


def _doctor(doctor_id: int) -> Doctor:
    # g.session is scoped to the user's CPTS: another CPTS's doctor is simply not found (404).
    doctor = g.session.get(Doctor, doctor_id)
    if doctor is None or doctor.territory_id != g.territory.id:
        abort(404)
    return doctor


def _site(doctor: Doctor, site_id: int) -> DoctorSite:
    site = g.session.get(DoctorSite, site_id)
    if site is None or site.doctor_id != doctor.id:
        abort(404)
    return site


def _back(doctor: Doctor) -> ResponseReturnValue:
    return redirect(url_for("doctors.edit", doctor_id=doctor.id) + "#sites-title")


@bp.post("/<int:doctor_id>/sites")
@staff_required(*STAFF)
def add(doctor_id: int) -> ResponseReturnValue:
    doctor = _doctor(doctor_id)
    form = SiteForm(prefix="new")
    if form.validate_on_submit():
        try:
            add_site(
                g.session, gazetteer(), doctor, form.to_input(), now=utcnow(), actor_label=_actor()
            )
        except DoctorError as exc:
            g.session.rollback()
            flash(exc.message, "error")
            return _back(doctor)
        g.session.commit()
        flash("Site secondaire ajouté.", "success")
    else:
        flash("Vérifiez les coordonnées du site (latitude et longitude en nombres).", "error")
    return _back(doctor)


@bp.post("/<int:doctor_id>/sites/<int:site_id>")
@staff_required(*STAFF)
def edit(doctor_id: int, site_id: int) -> ResponseReturnValue:
    doctor = _doctor(doctor_id)
    site = _site(doctor, site_id)
    form = SiteForm(prefix=f"s{site.id}")
    if form.validate_on_submit():
        try:
            update_site(
                g.session,
                gazetteer(),
                doctor,
                site,
                form.to_input(),
                now=utcnow(),
                actor_label=_actor(),
            )
        except DoctorError as exc:
            g.session.rollback()
            flash(exc.message, "error")
            return _back(doctor)
        g.session.commit()
        flash("Site secondaire modifié.", "success")
    else:
        flash("Vérifiez les coordonnées du site (latitude et longitude en nombres).", "error")
    return _back(doctor)


@bp.post("/<int:doctor_id>/sites/<int:site_id>/placer")
@staff_required(*STAFF)
def place(doctor_id: int, site_id: int) -> ResponseReturnValue:
    """Place a site by coordinates (typed, or posted by a click on the doctor's map)."""
    doctor = _doctor(doctor_id)
    site = _site(doctor, site_id)
    form = PlaceForm()
    wants_json = request.accept_mimetypes.best == "application/json"
    error = "Indiquez la latitude et la longitude."
    if form.validate_on_submit():
        try:
            place_site(
                g.session,
                doctor,
                site,
                float(form.lat.data),
                float(form.lon.data),
                now=utcnow(),
                actor_label=_actor(),
            )
            g.session.commit()
            if wants_json:
                return jsonify(lat=site.lat, lon=site.lon)
            flash("Le site est placé sur la carte.", "success")
            return _back(doctor)
        except DoctorError as exc:
            g.session.rollback()
            error = exc.message
    if wants_json:
        return jsonify(error=error), 422
    flash(error, "error")
    return _back(doctor)


@bp.post("/<int:doctor_id>/sites/<int:site_id>/supprimer")
@staff_required(*STAFF)
def remove(doctor_id: int, site_id: int) -> ResponseReturnValue:
    doctor = _doctor(doctor_id)
    site = _site(doctor, site_id)
    remove_site(g.session, gazetteer(), doctor, site, now=utcnow(), actor_label=_actor())
    g.session.commit()
    flash("Site secondaire retiré.", "success")
    return _back(doctor)


def _make_link(doctor: Doctor) -> str:
    settings = current_app.extensions["orientation.settings"]
    return availability_link(doctor, settings.base_url, settings.secret_key)


@bp.post("/<int:doctor_id>/inviter")
@staff_required(*STAFF)
def invite_one(doctor_id: int) -> ResponseReturnValue:
    doctor = _doctor(doctor_id)
    try:
        sent = invite_doctor(
            g.session, g.territory, doctor, utcnow(), _make_link, actor_label=_actor()
        )
    except NotInvitable as exc:
        g.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("doctors.edit", doctor_id=doctor.id))
    if sent:
        audit.record(
            g.session,
            "doctor.invite",
            territory_id=g.territory.id,
            user_id=g.user.id,
            object_type="doctor",
            object_id=doctor.id,
            ip=request.remote_addr or "",
        )
    g.session.commit()
    flash(
        f"Invitation envoyée à {doctor.display_name}."
        if sent
        else f"{doctor.display_name} a déjà été invité(e) aujourd'hui : rien de plus n'est envoyé.",
        "success",
    )
    return redirect(url_for("doctors.edit", doctor_id=doctor.id))


@bp.post("/inviter")
@staff_required(*STAFF)
def invite_everyone() -> ResponseReturnValue:
    report = invite_all(g.session, g.territory, utcnow(), _make_link, actor_label=_actor())
    audit.record(
        g.session,
        "doctor.invite_all",
        territory_id=g.territory.id,
        user_id=g.user.id,
        ip=request.remote_addr or "",
        sent=report.sent,
        already_today=report.already_today,
        no_contact=report.no_contact,
    )
    g.session.commit()
    flash(
        f"{report.sent} invitation(s) envoyée(s) ; {report.already_today} déjà invité(s) "
        f"aujourd'hui ; {report.no_contact} sans e-mail ni téléphone portable.",
        "success",
    )
    return redirect(url_for("doctors.index", filtre="not_yet"))


def site_forms(doctor: Doctor) -> list[tuple[DoctorSite, SiteForm]]:
    """Each secondary site with its edit form filled in (for the doctor's page)."""
    result = []
    for site in sites_of(g.session, doctor):
        commune = gazetteer().get(site.commune_insee) if site.commune_insee else None
        # Given coordinates are shown so that saving the form keeps them.
        given = site.location_precision is LocationPrecision.ADDRESS
        form = SiteForm(
            formdata=None,
            prefix=f"s{site.id}",
            data={
                "site_address": site.address,
                "site_postal_code": site.postal_code,
                "site_commune": commune.name if commune else "",
                "site_lat": site.lat if given else None,
                "site_lon": site.lon if given else None,
            },
        )
        result.append((site, form))
    return result
