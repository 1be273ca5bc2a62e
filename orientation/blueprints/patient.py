"""Patient pages: the questionnaire from a flyer's QR code, its confirmation, the private link."""

from __future__ import annotations

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from geo.communes import gazetteer
from models import Request, Source, Status, Territory, utcnow
from orientation.blueprints import show_forms_again
from orientation.blueprints.intake_common import (
    client_ip,
    form_context,
    geocoder,
    intake_territory,
    settings,
    signer,
    submit,
)
from orientation.db import db_session
from orientation.extensions import limiter
from orientation.links import LinkExpired, LinkInvalid
from orientation.services.intake import (
    FIRST_LINK_VERSION,
    NotForwardable,
    acknowledgement_channel,
    forward_request,
    forward_target,
    private_token,
)
from orientation.services.intake_validation import IntakeInvalid, SpamSuspected, form_to_payload
from orientation.services.patient_link import (
    FollowUpInvalid,
    RequestErased,
    audit_read,
    complete_request,
    forwarded_copy,
    request_of_token,
    withdraw_request,
)
from orientation.services.patient_proposal import decline_proposal, proposal_shown
from orientation.services.request_case import CaseError
from orientation.services.territories import territories_covering
from orientation.services.workflow import ProcessingLimited

bp = Blueprint("patient", __name__)

# The private link's pages, per client address: a person reads theirs a few times; each read is
# an audit entry, which a script reloading the page must not be able to flood.
LINK_READ_LIMIT = "30 per minute;300 per hour"
# Per client address: enough for a family filling in several requests, not for a script.
# INTAKE_RATE_LIMIT in the app config overrides it (the benchmark's 20 clients share 127.0.0.1).
SUBMIT_LIMIT = "10 per minute;60 per hour"
# Withdrawing cannot be undone from the link: a ticked box confirms it, as for erasing.
CONFIRM_WITHDRAWAL = "Cochez la case pour confirmer que vous retirez votre demande."


def submit_limit() -> str:
    return str(current_app.config.get("INTAKE_RATE_LIMIT", SUBMIT_LIMIT))


def _find_territory(slug: str) -> Territory | None:
    return db_session().scalar(select(Territory).where(Territory.slug == slug))


def _territory(slug: str) -> Territory:
    territory = _find_territory(slug)
    if territory is None:
        abort(404)
    return territory


@bp.route("/cpts/<slug>/demande", methods=["GET", "POST"])
@limiter.limit(submit_limit, methods=["POST"])
def questionnaire(slug: str) -> ResponseReturnValue:
    if request.method == "GET":
        values = {"source_tag": request.args.get("source", "")[:40]}
        return render_template(
            "patient/questionnaire.html", territory=_territory(slug), **form_context(values)
        )
    # The hot path reads only what a submission needs; pages shown again read the whole CPTS
    # (its RGPD notice).
    territory = intake_territory(slug)
    if territory is None:
        abort(404)
    values = request.form.to_dict()
    try:
        result = submit(
            db_session(),
            territory,
            form_to_payload(request.form),
            source=Source.QUESTIONNAIRE,
            submission_key=request.form.get("nonce", ""),
        )
    except IntakeInvalid as error:
        context = form_context(values, error, request.form.get("nonce", ""))
        return render_template(
            "patient/questionnaire.html", territory=_territory(slug), **context
        ), 422
    except SpamSuspected:
        # Say nothing useful to a robot; a person never fills the hidden field.
        return render_template("patient/received.html", territory=_territory(slug)), 200
    return redirect(url_for("patient.confirmation", token=result.token), code=303)


def _questionnaire_again(notice: str, slug: str) -> str | None:
    territory = _find_territory(slug)
    if territory is None:
        return None
    # The same nonce: sending it again cannot make a second request.
    context = form_context(
        request.form.to_dict(), nonce=request.form.get("nonce", ""), notice=notice
    )
    return render_template("patient/questionnaire.html", territory=territory, **context)


def _follow_up_again(notice: str, token: str) -> str | None:
    try:
        req = request_of_token(db_session(), signer(), token)
    except LinkInvalid:  # expired too: the error page says so
        return None
    return render_template("patient/follow_up.html", errors={}, values=request.form.to_dict(),
                           notice=notice, **_follow_up_context(req, token))  # fmt: skip


# The forms with something typed in them; the others (withdraw, forward) have nothing to keep.
show_forms_again(
    bp, {"patient.questionnaire": _questionnaire_again, "patient.complete": _follow_up_again}
)


@bp.get("/suivi/<token>/confirmation")
@limiter.limit(LINK_READ_LIMIT)
def confirmation(token: str) -> ResponseReturnValue:
    req = request_of_link(token)
    # How the link reaches them, said plainly: nothing can reach a landline.
    channel = acknowledgement_channel(req.phone, req.email, req.preferred_channel)
    return render_template(
        "patient/confirmation.html", acknowledged_by=channel, **_follow_up_context(req, token)
    )


def request_of_link(token: str) -> Request:
    """The request a private link opens; 404 for a bad link, 410 once expired or erased (the
    erased request's page says when, and where to turn)."""
    try:
        return request_of_token(db_session(), signer(), token)
    except LinkExpired:
        abort(410)
    except RequestErased as erased:
        abort(erased_page(erased))
    except LinkInvalid:
        abort(404)


def erased_page(erased: RequestErased) -> Response:
    """What an erased request's link shows: when, the CPTS to turn to, a new questionnaire."""
    territory = db_session().get(Territory, erased.territory_id)
    page = render_template("patient/erased.html", erased_at=erased.erased_at, territory=territory)
    return current_app.make_response((page, 410))


def _follow_up_context(req: Request, token: str) -> dict[str, object]:
    session = db_session()
    territory = session.get(Territory, req.territory_id)
    if territory is None:
        abort(404)
    others = []
    if req.status is Status.OUT_OF_TERRITORY:
        others = [
            t for t in territories_covering(session, req.commune_insee) if t.id != territory.id
        ]
    commune = gazetteer().get(req.commune_insee)
    # A forwarded request's old link says where it went and the reference that now counts.
    copy = forwarded_copy(session, req)
    forwarded = None
    if copy is not None:
        forwarded = {
            "cpts": session.get(Territory, copy.territory_id),
            "reference": copy.reference,
            "token": _copy_token(copy),
        }
    audit_read(session, req, client_ip())
    return {
        "req": req,
        "proposal": proposal_shown(session, req),
        "token": token,
        "territory": territory,
        "others": others,
        "commune": commune,
        "forwarded": forwarded,
        "link": f"{settings().base_url}/suivi/{token}",
    }


def _copy_token(copy: Request) -> str | None:
    """The link to the forwarded copy, as the forwarding gave it (its first one), until the
    copy is erased or its CPTS sends the person a new link: this request's link must not hand
    out the new one (patient_link_renewal). The page then gives the reference and contacts."""
    if copy.anonymised_at is not None or copy.link_version != FIRST_LINK_VERSION:
        return None
    return private_token(signer(), copy.id, copy.link_version)


@bp.get("/suivi/<token>")
@limiter.limit(LINK_READ_LIMIT)
def follow_up(token: str) -> ResponseReturnValue:
    req = request_of_link(token)
    return render_template("patient/follow_up.html", errors={}, values={},
                           **_follow_up_context(req, token))  # fmt: skip


@bp.post("/suivi/<token>/completer")
@limiter.limit(submit_limit)
def complete(token: str) -> ResponseReturnValue:
    req = request_of_link(token)
    try:
        complete_request(
            db_session(), req, comment=request.form.get("comment", ""),
            phone=request.form.get("phone", ""), email=request.form.get("email", ""),
            now=utcnow(), ip=client_ip(),
        )  # fmt: skip
    except FollowUpInvalid as error:
        db_session().rollback()
        context = _follow_up_context(req, token)
        return render_template("patient/follow_up.html", errors=error.errors,
                               values=request.form.to_dict(), **context), 422  # fmt: skip
    return redirect(url_for("patient.follow_up", token=token, fait="complete"), code=303)


@bp.post("/suivi/<token>/retirer")
@limiter.limit(submit_limit)
def withdraw(token: str) -> ResponseReturnValue:
    req = request_of_link(token)
    if not request.form.get("confirm"):
        context = _follow_up_context(req, token)
        return render_template("patient/follow_up.html", errors={}, values={},
                               withdraw_errors={"confirm": CONFIRM_WITHDRAWAL},
                               **context), 422  # fmt: skip
    withdraw_request(db_session(), req, now=utcnow(), ip=client_ip())
    return redirect(url_for("patient.follow_up", token=token, fait="retiree"), code=303)


@bp.post("/suivi/<token>/ne-convient-pas")
@limiter.limit(submit_limit)
def decline(token: str) -> ResponseReturnValue:
    """The proposal does not suit the person: back to the coordinator, with their reason."""
    req = request_of_link(token)
    reason = request.form.get("reason", "")
    try:
        decline_proposal(db_session(), req, reason=reason, now=utcnow(), ip=client_ip())
    except ProcessingLimited:
        db_session().rollback()
        return redirect(url_for("patient.follow_up", token=token, fait="limitee"), code=303)
    except CaseError as error:
        db_session().rollback()
        if not error.field:  # nothing to answer (any more): the page says so
            return redirect(url_for("patient.follow_up", token=token, fait="sans-proposition"), 303)
        context = _follow_up_context(req, token)
        page = render_template("patient/follow_up.html", errors={}, values={"reason": reason},
                               decline_errors={error.field: str(error)}, **context)  # fmt: skip
        return page, 422
    db_session().commit()
    return redirect(url_for("patient.follow_up", token=token, fait="ne-convient-pas"), code=303)


@bp.post("/suivi/<token>/transmettre/<slug>")
@limiter.limit(submit_limit)
def forward(token: str, slug: str) -> ResponseReturnValue:
    req = request_of_link(token)
    try:
        target = forward_target(db_session(), req, slug)
    except NotForwardable:
        abort(404)
    try:
        result = forward_request(
            db_session(), req, target, now=utcnow(), geocoder=geocoder(), signer=signer(),
            base_url=settings().base_url, ip=client_ip(),
        )  # fmt: skip
    except ProcessingLimited:  # sending it to another CPTS is processing it
        db_session().rollback()
        return redirect(url_for("patient.follow_up", token=token, fait="limitee"), code=303)
    return redirect(url_for("patient.confirmation", token=result.token), code=303)


@bp.get("/suivi/<token>/completer")
@bp.get("/suivi/<token>/retirer")
@bp.get("/suivi/<token>/ne-convient-pas")
@bp.get("/suivi/<token>/transmettre/<slug>")
def back_to_follow_up(token: str, slug: str = "") -> ResponseReturnValue:
    """These addresses only take a form; reloading one (shown after an error) goes back to
    the page of the form rather than to an error 405."""
    return redirect(url_for("patient.follow_up", token=token), code=303)
