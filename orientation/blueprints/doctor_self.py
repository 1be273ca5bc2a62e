"""Doctor self-service: the availability form opened from a signed link (/medecin/<token>).

No password: the link is the credential. It is signed for this one purpose and one doctor,
expires, and carries the doctor's link version, which goes up on each submission, so an old,
forwarded or replayed link shows a clear page and changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from models import Doctor, Territory, VolunteerStatus, utcnow
from orientation.blueprints import show_forms_again
from orientation.blueprints.doctor_forms import SelfServiceForm
from orientation.db import db_session
from orientation.extensions import limiter
from orientation.links import LinkExpired, LinkInvalid, LinkPurpose, LinkSigner
from orientation.services.doctor_refresh import (
    LinkAlreadyUsed,
    apply_answer,
    mark_opened,
)

bp = Blueprint("doctor_self", __name__, url_prefix="/medecin")


def signer() -> LinkSigner:
    return LinkSigner(current_app.extensions["orientation.settings"].secret_key)


def _refused(kind: str, territory: Territory | None = None) -> ResponseReturnValue:
    return render_template("doctors/self_refused.html", kind=kind, territory=territory), (
        410 if kind in ("expired", "used", "inactive") else 404
    )


class _Refused(Exception):
    def __init__(self, kind: str, territory: Territory | None = None) -> None:
        super().__init__(kind)
        self.kind = kind
        self.territory = territory


def _open(token: str) -> tuple[int, Doctor, Territory]:
    """The link's version, its doctor and the doctor's CPTS; raise _Refused."""
    try:
        claims = signer().read(LinkPurpose.DOCTOR_AVAILABILITY, token)
    except LinkExpired:
        # Genuine but too old: the doctor is known, so the page names their CPTS to call.
        doctor_id = signer().subject_of_expired(LinkPurpose.DOCTOR_AVAILABILITY, token)
        expired_of = db_session().get(Doctor, doctor_id) if doctor_id is not None else None
        raise _Refused(
            "expired",
            db_session().get(Territory, expired_of.territory_id) if expired_of else None,
        ) from None
    except LinkInvalid:
        raise _Refused("invalid") from None
    session = db_session()
    doctor = session.get(Doctor, claims.subject_id)
    if doctor is None:
        raise _Refused("invalid")
    territory = session.get(Territory, doctor.territory_id)
    assert territory is not None  # a doctor belongs to a CPTS
    if not doctor.active:
        # The link is intact: say why it changes nothing, and whom to call.
        raise _Refused("inactive", territory)
    if claims.version != doctor.link_version:
        raise _Refused("used", territory)
    return claims.version, doctor, territory


def _form_page(
    form: SelfServiceForm, doctor: Doctor, territory: Territory, notice: str = ""
) -> str:
    return render_template(
        "doctors/self_form.html", form=form, doctor=doctor, territory=territory, notice=notice
    )


@bp.route("/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def availability(token: str) -> ResponseReturnValue:
    try:
        version, doctor, territory = _open(token)
    except _Refused as refused:
        return _refused(refused.kind, refused.territory)
    session = db_session()
    invited = doctor.volunteer_status in (VolunteerStatus.NOT_YET, VolunteerStatus.DECLINED)
    if request.method == "POST":
        form = SelfServiceForm()
    else:
        form = SelfServiceForm(
            data={
                # An invited doctor has given no answer yet: none is pre-selected, so that
                # "Enregistrer" tapped at once does not decline on their behalf.
                "accepting": None if invited else doctor.accepting.value,
                "paused_until": doctor.paused_until,
                "capacity_left": None if invited else doctor.capacity_left,
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
            apply_answer(session, doctor, version, form.answer(), now)
        except LinkAlreadyUsed:
            session.rollback()
            return _refused("used", territory)
        session.commit()
        return render_template("doctors/self_done.html", doctor=doctor, territory=territory)
    if not form.is_submitted():
        mark_opened(session, doctor, now)
        session.commit()
    return _form_page(form, doctor, territory), 422 if form.is_submitted() else 200


def _form_again(notice: str, token: str) -> str | None:
    try:
        _version, doctor, territory = _open(token)
    except _Refused:
        return None
    return _form_page(SelfServiceForm(), doctor, territory, notice)  # filled from the POST


show_forms_again(bp, {"doctor_self.availability": _form_again})
