"""Intake by staff: the coordinator on the phone line, and the referral form for professionals."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from geo.communes import gazetteer
from models import Role, Source, Status, Territory, utcnow
from orientation.auth import staff_required
from orientation.blueprints.auth import Typed, keep_through_login
from orientation.blueprints.intake_common import (
    client_ip,
    form_context,
    geocoder,
    settings,
    signer,
    submit,
)
from orientation.db import db_session, session_factory
from orientation.services import audit
from orientation.services.intake import (
    NotForwardable,
    Submitted,
    forward_request,
    forward_target,
)
from orientation.services.intake_validation import IntakeInvalid, SpamSuspected, form_to_payload
from orientation.services.request_case import get_request
from orientation.services.territories import territories_covering
from orientation.services.workflow import ProcessingLimited

bp = Blueprint("intake_staff", __name__)

PHONE_LINE = (Role.COORDINATOR, Role.CPTS_ADMIN)
REFERRERS = (Role.REFERRER, Role.COORDINATOR, Role.CPTS_ADMIN)
FORM_OF_SOURCE = {Source.PHONE: "intake_staff.phone_intake"}  # otherwise the referral form


def _handle(source: Source, template: str) -> ResponseReturnValue:
    if request.method == "GET":
        return render_template(template, territory=g.territory, **form_context({}))
    referrer = g.user.id if source is Source.PROFESSIONAL else None
    try:
        result = submit(
            g.session, g.territory, form_to_payload(request.form), source=source,
            submission_key=request.form.get("nonce", ""), referrer_id=referrer,
            actor_user_id=g.user.id,
        )  # fmt: skip
    except IntakeInvalid as error:
        context = form_context(request.form.to_dict(), error, request.form.get("nonce", ""))
        return render_template(template, territory=g.territory, **context), 422
    except SpamSuspected:
        return render_template(template, territory=g.territory, **form_context({})), 422
    return _confirmation(result)


def _confirmation(result: Submitted, forwarded: tuple[str, Territory] | None = None) -> str:
    """The reference to give, how the person hears of it, and, out of territory, where to turn:
    the hosted CPTS that covers the commune (with a button to forward the request) or the
    CPAM. Never a dead end, for the person nor for whoever took the request."""
    others: list[Territory] = []
    if result.status is Status.OUT_OF_TERRITORY:
        covering = territories_covering(db_session(), result.commune_insee)
        others = [t for t in covering if t.id != g.territory.id]
    return render_template(
        "intake/staff_confirmation.html",
        territory=g.territory,
        req=result,
        link=f"{settings().base_url}/suivi/{result.token}",
        others=others,
        commune=gazetteer().get(result.commune_insee),
        again_url=url_for(FORM_OF_SOURCE.get(result.source, "intake_staff.referral")),
        forwarded=forwarded,  # (the reference here, the CPTS it went to)
        # The case page (ranking, dérogation...) is the coordination's, and a forwarded copy
        # is another CPTS's.
        can_open=g.user.role in PHONE_LINE and forwarded is None,
    )


@bp.route("/espace/saisie", methods=["GET", "POST"])
@staff_required(*PHONE_LINE)
def phone_intake() -> ResponseReturnValue:
    """The coordinator fills in the questionnaire with the person on the phone."""
    return _handle(Source.PHONE, "intake/phone.html")


@bp.route("/orienter", methods=["GET", "POST"])
@staff_required(*REFERRERS)
def referral() -> ResponseReturnValue:
    """A professional or CPAM agent registers a patient met in practice (fiche 2)."""
    return _handle(Source.PROFESSIONAL, "intake/referral.html")


@bp.post("/orienter/<int:request_id>/transmettre/<slug>")
@staff_required(*REFERRERS)
def forward(request_id: int, slug: str) -> ResponseReturnValue:
    """Send a request just found out of territory to the hosted CPTS that covers its commune,
    as the person agreed on the phone or at the counter (they can also do it by their link)."""
    found = get_request(g.session, request_id)  # of this CPTS only
    if found is None or (g.user.role is Role.REFERRER and found.referrer_id != g.user.id):
        abort(404)
    try:
        target = forward_target(db_session(), found, slug)
    except NotForwardable:
        abort(404)
    # The copy belongs to the other CPTS: the one write outside the user's CPTS that staff can
    # make, checked above, in a session of its own (the request's session stays scoped).
    with session_factory()() as across:
        original = get_request(across, found.id)
        assert original is not None
        # Committed with the copy and the closing of the original, or not at all.
        audit.record(
            across, "request.forwarded", territory_id=g.territory.id, user_id=g.user.id,
            object_type="request", object_id=found.id, ip=client_ip(), to=target.slug,
        )  # fmt: skip
        try:
            result = forward_request(
                across, original, target, now=utcnow(), geocoder=geocoder(), signer=signer(),
                base_url=settings().base_url, ip=client_ip(), actor_user_id=g.user.id,
            )  # fmt: skip
        except ProcessingLimited:  # the person limited its processing: it stays here
            abort(409)
    return _confirmation(result, forwarded=(found.reference, target))


@bp.get("/orienter/<int:request_id>/transmettre/<slug>")
@staff_required(*REFERRERS)
def back_from_forward(request_id: int, slug: str) -> ResponseReturnValue:
    """This address only takes the forwarding button; reloading it goes back to the request
    (the coordination's case page) or, for a referrer, to the referral form, not to a 405."""
    if g.user.role in PHONE_LINE:
        return redirect(url_for("requests_staff.case", request_id=request_id), code=303)
    return redirect(url_for("intake_staff.referral"), code=303)


def _form_again(template: str) -> Callable[[str, Typed], str]:
    def again(notice: str, values: Typed) -> str:
        # The same nonce: sending it again cannot make a second request.
        context = form_context(values, nonce=values.get("nonce", ""), notice=notice)
        return render_template(template, territory=g.territory, **context)

    return again


# A session that expired during a call loses nothing typed (see keep_through_login).
keep_through_login(bp, {
    "intake_staff.phone_intake": staff_required(*PHONE_LINE)(_form_again("intake/phone.html")),
    "intake_staff.referral": staff_required(*REFERRERS)(_form_again("intake/referral.html")),
})  # fmt: skip
