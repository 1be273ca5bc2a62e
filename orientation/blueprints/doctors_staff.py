"""Coordinator screens for the volunteer doctors (/espace/medecins) and the map (/espace/carte)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from geo.communes import gazetteer
from models import Doctor, DoctorEvent, LocationPrecision, Role, utcnow
from orientation.auth import staff_required
from orientation.blueprints.auth import Typed, keep_through_login
from orientation.blueprints.doctor_forms import DoctorForm, PlaceForm, SiteForm, UploadForm
from orientation.blueprints.doctor_sites_staff import site_forms
from orientation.services import audit
from orientation.services.doctor_directory import DirectoryRefused, import_directory
from orientation.services.doctor_export import export_rows
from orientation.services.doctor_import import ImportRefused, import_doctors
from orientation.services.doctor_invitations import invitable_count
from orientation.services.doctor_list import DoctorFilters, describe_event, list_doctors
from orientation.services.doctor_map import MapFilters, map_geojson
from orientation.services.doctor_refresh import campaign_progress
from orientation.services.doctor_sites import territory_sites
from orientation.services.doctors import (
    DoctorError,
    contact_route,
    place_doctor,
    save_doctor,
    set_active,
    unreachable_reason,
)

bp = Blueprint("doctors", __name__, url_prefix="/espace")
STAFF = (Role.COORDINATOR, Role.CPTS_ADMIN)


def _actor() -> str:
    return str(g.user.full_name or g.user.email)


def _doctor(doctor_id: int) -> Doctor:
    # g.session is scoped to the user's CPTS: another CPTS's doctor is simply not found (404).
    doctor = g.session.get(Doctor, doctor_id)
    if doctor is None or doctor.territory_id != g.territory.id:
        abort(404)
    return doctor


@bp.get("/medecins")
@staff_required(*STAFF)
def index() -> ResponseReturnValue:
    filters = DoctorFilters(text=request.args.get("q", ""), only=request.args.get("filtre", ""))
    now = utcnow()
    rows = list_doctors(g.session, g.territory, now, filters)
    progress = campaign_progress(g.session, g.territory, now)
    return render_template(
        "doctors/index.html",
        invitable=invitable_count(g.session, g.territory),
        rows=rows,
        filters=filters,
        progress=progress,
        territory=g.territory,
        gazetteer=gazetteer(),
        upload=UploadForm(),
    )


def _form_data(doctor: Doctor) -> dict[str, Any]:
    commune = gazetteer().get(doctor.commune_insee) if doctor.commune_insee else None
    return {
        "rpps": doctor.rpps,
        "last_name": doctor.last_name,
        "first_name": doctor.first_name,
        "practice_address": doctor.practice_address,
        "postal_code": doctor.postal_code,
        "commune": commune.name if commune else "",
        # Given coordinates are shown so that saving the form keeps them.
        "lat": doctor.lat if doctor.location_precision is LocationPrecision.ADDRESS else None,
        "lon": doctor.lon if doctor.location_precision is LocationPrecision.ADDRESS else None,
        "phone": doctor.phone,
        "email": doctor.email,
        "preferred_channel": doctor.preferred_channel,
        "volunteer_status": doctor.volunteer_status.value,
        "accepting": doctor.accepting.value,
        "paused_until": doctor.paused_until,
        "capacity_left": doctor.capacity_left,
        "accepts_under_6": doctor.accepts_under_6,
        "accepts_elderly_dependent": doctor.accepts_elderly_dependent,
        "accepts_ald_followup": doctor.accepts_ald_followup,
        "home_visits": doctor.home_visits,
        "home_visit_radius_km": doctor.home_visit_radius_km,
        "languages": doctor.languages,
        "step_free_access": doctor.step_free_access,
        "coordinator_note": doctor.coordinator_note,
    }


def _save(form: DoctorForm, doctor: Doctor | None) -> Doctor | None:
    """Validate and save; on a service error put the French message on its field."""
    if not form.validate_on_submit():
        return None
    try:
        saved = save_doctor(
            g.session,
            gazetteer(),
            g.territory,
            form.to_input(),
            now=utcnow(),
            actor_label=_actor(),
            doctor=doctor,
        )
    except DoctorError as exc:
        g.session.rollback()
        getattr(form, exc.field).errors = [exc.message]
        return None
    audit.record(
        g.session,
        "doctor.created" if doctor is None else "doctor.updated",
        territory_id=g.territory.id,
        user_id=g.user.id,
        object_type="doctor",
        object_id=saved.id,
        ip=request.remote_addr or "",
    )
    g.session.commit()
    return saved


@bp.route("/medecins/nouveau", methods=["GET", "POST"])
@staff_required(*STAFF)
def create() -> ResponseReturnValue:
    form = DoctorForm()
    saved = _save(form, None)
    if saved is not None:
        flash(f"{saved.display_name} est enregistré(e).", "success")
        return redirect(url_for("doctors.edit", doctor_id=saved.id))
    return render_template("doctors/form.html", form=form, doctor=None, events=[]), (
        422 if form.is_submitted() else 200
    )


@staff_required(*STAFF)
def _create_again(notice: str, values: Typed) -> str:
    form = DoctorForm(formdata=values)
    return render_template("doctors/form.html", form=form, doctor=None, events=[], notice=notice)


@bp.route("/medecins/<int:doctor_id>", methods=["GET", "POST"])
@staff_required(*STAFF)
def edit(doctor_id: int) -> ResponseReturnValue:
    doctor = _doctor(doctor_id)
    form = (
        DoctorForm(data=_form_data(doctor)) if request.method == "GET" else DoctorForm(kept=doctor)
    )
    saved = _save(form, doctor)
    if saved is not None:
        flash(f"{saved.display_name} : modifications enregistrées.", "success")
        return redirect(url_for("doctors.edit", doctor_id=saved.id))
    return _edit_page(_doctor(doctor_id), form), 422 if form.is_submitted() else 200


def _edit_page(doctor: Doctor, form: DoctorForm, notice: str = "") -> str:
    events = g.session.scalars(
        select(DoctorEvent)
        .where(DoctorEvent.doctor_id == doctor.id)
        .order_by(DoctorEvent.at.desc(), DoctorEvent.id.desc())
        .limit(20)
    ).all()
    return render_template(
        "doctors/form.html",
        form=form,
        doctor=doctor,
        events=[(e.at, describe_event(e)) for e in events],
        unreachable="" if contact_route(doctor) else unreachable_reason(doctor),
        place=PlaceForm(),
        sites=site_forms(doctor),
        new_site=SiteForm(prefix="new", formdata=None),
        notice=notice,
    )


@staff_required(*STAFF)
def _edit_again(notice: str, values: Typed, doctor_id: int) -> str:
    return _edit_page(_doctor(doctor_id), DoctorForm(formdata=values), notice)


# A doctor's card typed past the end of the session is not lost (see keep_through_login).
keep_through_login(bp, {"doctors.create": _create_again, "doctors.edit": _edit_again})


@bp.post("/medecins/<int:doctor_id>/actif")
@staff_required(*STAFF)
def toggle_active(doctor_id: int) -> ResponseReturnValue:
    doctor = _doctor(doctor_id)
    active = request.form.get("active") == "1"
    set_active(g.session, doctor, active, now=utcnow(), actor_label=_actor())
    g.session.commit()
    flash(
        f"{doctor.display_name} est {'réactivé(e)' if active else 'désactivé(e)'}.",
        "success",
    )
    return redirect(url_for("doctors.edit", doctor_id=doctor.id))


@bp.post("/medecins/<int:doctor_id>/placer")
@staff_required(*STAFF)
def place(doctor_id: int) -> ResponseReturnValue:
    """Place a doctor by coordinates (typed, or posted by a click on the map)."""
    doctor = _doctor(doctor_id)
    form = PlaceForm()
    wants_json = request.accept_mimetypes.best == "application/json"
    error = "Indiquez la latitude et la longitude."
    if form.validate_on_submit():
        try:
            place_doctor(
                g.session,
                doctor,
                float(form.lat.data),
                float(form.lon.data),
                now=utcnow(),
                actor_label=_actor(),
            )
            g.session.commit()
            if wants_json:
                return jsonify(lat=doctor.lat, lon=doctor.lon)
            flash(f"{doctor.display_name} est placé(e) sur la carte.", "success")
            return redirect(url_for("doctors.edit", doctor_id=doctor.id))
        except DoctorError as exc:
            g.session.rollback()
            error = exc.message
    if wants_json:
        return jsonify(error=error), 422
    flash(error, "error")
    return redirect(url_for("doctors.edit", doctor_id=doctor.id))


@bp.post("/medecins/import")
@staff_required(*STAFF)
def import_csv() -> ResponseReturnValue:
    form = UploadForm()
    if not form.validate_on_submit():
        flash("Choisissez un fichier CSV.", "error")
        return redirect(url_for("doctors.index"))
    try:
        report = import_doctors(
            g.session,
            gazetteer(),
            g.territory,
            form.file.data.read(),
            now=utcnow(),
            actor_label=_actor(),
        )
    except ImportRefused as exc:
        g.session.rollback()
        return render_template("doctors/import_report.html", refused=str(exc), report=None), 422
    audit.record(
        g.session,
        "doctor.import",
        territory_id=g.territory.id,
        user_id=g.user.id,
        ip=request.remote_addr or "",
        created=report.created,
        updated=report.updated,
        rejected=len(report.rejected),
    )
    g.session.commit()
    return render_template("doctors/import_report.html", refused=None, report=report)


@bp.post("/medecins/annuaire")
@staff_required(*STAFF)
def import_rpps() -> ResponseReturnValue:
    form = UploadForm()
    if not form.validate_on_submit():
        flash("Choisissez l'extrait PS_LibreAcces.", "error")
        return redirect(url_for("doctors.index"))
    text = form.file.data.read().decode("utf-8-sig", errors="replace")
    try:
        report = import_directory(
            g.session,
            gazetteer(),
            g.territory,
            text.splitlines(),
            now=utcnow(),
            actor_label=_actor(),
        )
    except DirectoryRefused as exc:
        g.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("doctors.index"))
    g.session.commit()
    flash(
        f"Annuaire lu ({report.lines} lignes) : {report.created} médecins généralistes ajoutés "
        f"comme « pas encore volontaires », {report.already_known} déjà connus, "
        f"{report.sites} sites secondaires (autres lieux d'exercice) ajoutés.",
        "success",
    )
    return redirect(url_for("doctors.index", filtre="not_yet"))


@bp.get("/medecins/export.csv")
@staff_required(*STAFF)
def export_csv() -> ResponseReturnValue:
    doctors = g.session.scalars(
        select(Doctor)
        .where(Doctor.territory_id == g.territory.id, Doctor.active.is_(True))
        .order_by(Doctor.last_name, Doctor.id)
    ).all()
    audit.record(
        g.session,
        "doctor.export",
        territory_id=g.territory.id,
        user_id=g.user.id,
        ip=request.remote_addr or "",
        rows=len(doctors),
    )
    g.session.commit()
    return Response(
        stream_with_context(
            export_rows(doctors, gazetteer(), territory_sites(g.session, g.territory.id))
        ),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=medecins.csv"},
    )


def _map_filters() -> MapFilters:
    def flag(name: str) -> bool:
        return request.args.get(name) in ("1", "on", "true")

    return MapFilters(
        under_6=flag("moins6"),
        elderly_dependent=flag("agees"),
        ald_followup=flag("ald"),
        home_visits=flag("visites"),
    )


@bp.get("/carte")
@staff_required(*STAFF)
def map_page() -> ResponseReturnValue:
    return render_template("doctors/map.html", territory=g.territory, filters=_map_filters())


@bp.get("/carte.json")
@staff_required(*STAFF)
def map_json() -> ResponseReturnValue:
    body = map_geojson(g.session, gazetteer(), g.territory, utcnow(), _map_filters())
    return current_app.response_class(body, mimetype="application/geo+json")
