"""Doctor self-service: the availability form opened from a signed link (/medecin/<token>).

No password: the link is the credential. It is signed for this one purpose and one doctor,
expires, and carries the doctor's link version, which goes up on each submission, so an old,
forwarded or replayed link shows a clear page and changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from models import Doctor, Territory, utcnow
from orientation.blueprints.doctor_forms import SelfServiceForm
from orientation.db import db_session
from orientation.extensions import limiter
from orientation.links import LinkExpired, LinkInvalid, LinkPurpose, LinkSigner
from orientation.services.doctor_refresh import LinkAlreadyUsed, apply_answer, mark_opened

bp = Blueprint("doctor_self", __name__, url_prefix="/medecin")


def signer() -> LinkSigner:
    return LinkSigner(current_app.extensions["orientation.settings"].secret_key)


def _refused(kind: str, territory: Territory | None = None) -> ResponseReturnValue:
    return render_template("doctors/self_refused.html", kind=kind, territory=territory), (
        410 if kind in ("expired", "used") else 404
    )


@bp.route("/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def availability(token: str) -> ResponseReturnValue:
    try:
        claims = signer().read(LinkPurpose.DOCTOR_AVAILABILITY, token)
    except LinkExpired:
        return _refused("expired")
    except LinkInvalid:
        return _refused("invalid")
    session = db_session()
    doctor = session.get(Doctor, claims.subject_id)
    if doctor is None or not doctor.active:
        return _refused("invalid")
    territory = session.get(Territory, doctor.territory_id)
    if claims.version != doctor.link_version:
        return _refused("used", territory)
    if request.method == "POST":
        form = SelfServiceForm()
    else:
        form = SelfServiceForm(
            data={
                "accepting": doctor.accepting.value,
                "paused_until": doctor.paused_until,
                "capacity_left": doctor.capacity_left,
                "accepts_under_6": doctor.accepts_under_6,
                "accepts_elderly_dependent": doctor.accepts_elderly_dependent,
                "accepts_ald_followup": doctor.accepts_ald_followup,
                "home_visits": doctor.home_visits,
                "home_visit_radius_km": doctor.home_visit_radius_km,
            }
        )
    now = utcnow()
    if form.validate_on_submit():
        try:
            apply_answer(session, doctor, claims.version, form.answer(), now)
        except LinkAlreadyUsed:
            session.rollback()
            return _refused("used", territory)
        session.commit()
        return render_template("doctors/self_done.html", doctor=doctor, territory=territory)
    if not form.is_submitted():
        mark_opened(session, doctor, now)
        session.commit()
    status = 422 if form.is_submitted() else 200
    return render_template(
        "doctors/self_form.html", form=form, doctor=doctor, territory=territory
    ), status
