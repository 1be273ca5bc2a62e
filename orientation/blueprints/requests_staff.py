"""Coordinator workspace: the queue and the request page with its actions."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from geo.communes import gazetteer
from models import Channel, ContactStatus, Doctor, Request, Role, Source, Status, utcnow
from notifications.sms import sms_length
from orientation.auth import staff_required
from orientation.blueprints.auth import Typed, keep_through_login
from orientation.links import LinkSigner
from orientation.services import audit
from orientation.services.cascade import start_cascade
from orientation.services.doctor_contacts import Links, accepted_doctors, ask_doctors
from orientation.services.matching import NoPatientPoint, rank_doctors
from orientation.services.proposal import (
    CALL_OUTCOME_LABELS,
    CHANNEL_WORDS,
    CallOutcome,
    ProposalInput,
    call_outcomes_for,
    close_request,
    commune_name,
    doctors_by_ids,
    draft_proposal,
    last_proposal,
    mark_oriented,
    ranked_address,
    record_phone_call,
    send_proposal,
    with_distances,
)
from orientation.services.queue import (
    FOLLOW_UP_STATUSES,
    NEEDS,
    QUEUE_STATUSES,
    Cursor,
    QueueFilters,
    queue_page,
)
from orientation.services.queue import waiting_label as _waiting_label
from orientation.services.request_case import (
    EVENT_LABELS,
    CaseError,
    RequestEnded,
    case_view,
    correct_point,
    ended_notice,
    ensure_open,
    get_request,
    override_territory,
)
from orientation.services.territories import communes_by_name
from orientation.services.workflow import ProcessingLimited

bp = Blueprint("requests_staff", __name__, url_prefix="/espace/demandes")
COORDINATION = (Role.COORDINATOR, Role.CPTS_ADMIN)


def _links() -> Links:
    settings = current_app.extensions["orientation.settings"]
    return Links(LinkSigner(settings.secret_key), settings.base_url.rstrip("/"))


def _audit(action: str, object_id: int, **details: Any) -> None:
    audit.record(
        g.session,
        action,
        territory_id=g.territory.id,
        user_id=g.user.id,
        object_type="request",
        object_id=object_id,
        ip=request.remote_addr or "",
        **details,
    )


def _load(request_id: int) -> Request:
    """The request of the coordinator's CPTS, or a 404 (audited: ids may be probed)."""
    found = get_request(g.session, request_id)
    if found is None:
        _audit("request.not_found", request_id)
        g.session.commit()
        abort(404)
    return found


def _filters() -> QueueFilters:
    args = request.args
    status = args.get("statut", "")
    source = args.get("source", "")
    return QueueFilters(
        status=Status(status) if status in Status._value2member_map_ else None,
        source=Source(source) if source in Source._value2member_map_ else None,
        priority_only=args.get("priorite") == "1",
        need=args.get("besoin", "") if args.get("besoin", "") in NEEDS else "",
        commune_insee=args.get("commune", "")[:5] if args.get("commune", "").isdigit() else "",
        alert_only=args.get("alerte") == "1",
        follow_up_only=args.get("suivi") == "1",
    )


@bp.get("")
@staff_required(*COORDINATION)
def queue() -> ResponseReturnValue:
    filters = _filters()
    cursor = Cursor.decode(request.args.get("apres", ""))
    page = queue_page(g.session, g.territory.id, utcnow(), filters, cursor)
    audit.record(
        g.session,
        "queue.read",
        territory_id=g.territory.id,
        user_id=g.user.id,
        ip=request.remote_addr or "",
        shown=len(page.rows),
    )
    g.session.commit()
    args = {k: v for k, v in request.args.items() if k != "apres"}
    return render_template(
        "requests/queue.html",
        page=page,
        filters=filters,
        args=args,
        statuses=QUEUE_STATUSES,
        filter_statuses=FOLLOW_UP_STATUSES if filters.follow_up_only else QUEUE_STATUSES,
        sources=list(Source),
        waiting_label=_waiting_label,
        first_page=cursor is None,
        communes=communes_by_name(gazetteer(), g.territory),
    )


def _render_case(
    found: Request,
    errors: dict[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    code: int = 200,
    chosen_ids: list[int] | None = None,
    channels: set[str] | None = None,
    *,
    filled: str = "",
) -> ResponseReturnValue:
    return _case_page(found, errors, values, chosen_ids, channels, filled=filled), code


def _case_page(
    found: Request,
    errors: dict[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    chosen_ids: list[int] | None = None,
    channels: set[str] | None = None,
    *,
    filled: str = "",
    notice: str = "",
) -> str:
    """The request page; `values` typed in its form `filled` (the endpoint's name: position,
    territory_override, proposal, close) are shown in it again, and `notice` above it."""
    now = utcnow()
    view = case_view(g.session, g.territory, found, now)
    limited = found.processing_limited_at is not None
    ranking_error = ""
    if limited:
        # Kept, not worked on: no doctors are matched nor a proposal drafted (the page only
        # shows what is held, and the actions are not offered).
        ranking = None
    else:
        try:
            ranking = rank_doctors(g.session, g.territory, found, now)
        except NoPatientPoint:
            ranking, ranking_error = None, "Placez d'abord le domicile (latitude et longitude)."
    accepted = accepted_doctors(g.session, found)
    # A doctor already asked for this request is shown with the answer, not offered again;
    # the latest contact gives the answer.
    asked = {doctor.id: contact.status.value for contact, doctor in view.contacts}
    if chosen_ids:
        proposed = with_distances(g.session, found, doctors_by_ids(g.session, chosen_ids))
    else:
        # A doctor who declined is never proposed to the patient by default.
        willing: list[tuple[Doctor, float | None]] = [
            (c.doctor, c.distance_km)
            for c in (ranking.candidates if ranking else [])
            if asked.get(c.doctor.id) != ContactStatus.DECLINED.value
        ]
        proposed = accepted or willing[:3]
    draft = None if limited else draft_proposal(g.session, g.territory, found, proposed, _links())
    values = values or {}
    sms_text = values.get("sms_body", draft.sms if draft else "")
    return render_template(
        "requests/case.html",
        view=view,
        req=found,
        ranking=ranking,
        ranking_error=ranking_error,
        accepted=accepted,
        proposed_ids={d.id for d, _ in proposed},
        draft=draft,
        sms_text=sms_text,
        sms=sms_length(sms_text),
        email_subject=values.get("email_subject", draft.email_subject if draft else ""),
        email_body=values.get("email_body", draft.email_body if draft else ""),
        errors=errors or {},
        values=values,
        filled=filled,
        notice=notice,
        # After a refused form, the channels as the coordinator left them; else all reachable.
        channels=channels,
        asked=asked,
        call_outcomes={o: CALL_OUTCOME_LABELS[o] for o in call_outcomes_for(found)},
        event_labels=EVENT_LABELS,
        ranked_address=ranked_address,
        commune_name=commune_name(found.postal_code, found.commune_insee),
        # Oriented, closed or withdrawn: said once at the top, and no form changes the request.
        ended=ended_notice(found),
        sent_before=last_proposal(g.session, found),
        # A fresh token per page: the same form posted twice sends one proposal.
        nonce=secrets.token_hex(8),
    )


@bp.errorhandler(ProcessingLimited)
@bp.errorhandler(RequestEnded)
def processing_limited(exc: ProcessingLimited | RequestEnded) -> ResponseReturnValue:
    """Any action on a request whose processing the patient limited, or that is oriented,
    closed or withdrawn: nothing is kept of it, the coordinator reads why on the request page
    (or map.js gets it as JSON)."""
    g.session.rollback()
    if request.is_json:
        return jsonify(error=str(exc), field=""), 409
    flash(str(exc), "error")
    return redirect(
        url_for("requests_staff.case", request_id=(request.view_args or {})["request_id"])
    )


@bp.get("/<int:request_id>")
@staff_required(*COORDINATION)
def case(request_id: int) -> ResponseReturnValue:
    found = _load(request_id)
    _audit("request.read", found.id)
    g.session.commit()
    return _render_case(found)


def _done(found: Request, message: str, action: str) -> ResponseReturnValue:
    _audit(action, found.id)
    g.session.commit()
    flash(message, "success")
    return redirect(url_for("requests_staff.case", request_id=found.id))


def _refused(found: Request, exc: CaseError) -> ResponseReturnValue:
    g.session.rollback()
    flash(str(exc), "error")
    return redirect(url_for("requests_staff.case", request_id=found.id))


def _float(name: str) -> float | None:
    try:
        return float(request.form.get(name, "").replace(",", "."))
    except ValueError:
        return None


def _doctor_ids() -> list[int]:
    return [int(i) for i in request.form.getlist("doctor_ids") if i.isdigit()]


def _point_input() -> tuple[float | None, float | None, bool]:
    """lat, lon from the form or from map.js's JSON body; True when the caller wants JSON."""
    if request.is_json:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        return _number(body.get("lat")), _number(body.get("lon")), True
    return _float("lat"), _float("lon"), False


def _number(value: object) -> float | None:
    # bool is an int in Python: a JSON true is not a latitude.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(str(value).replace(",", "."))
    except ValueError:
        return None


@bp.post("/<int:request_id>/position")
@staff_required(*COORDINATION)
def position(request_id: int) -> ResponseReturnValue:
    """Correct the household's point: the lat/lon form, or the map's dragged marker (JSON)."""
    found = _load(request_id)
    lat, lon, wants_json = _point_input()
    try:
        event = correct_point(found, lat, lon, now=utcnow(), user_id=g.user.id)
    except CaseError as exc:
        g.session.rollback()
        if wants_json:
            return jsonify(error=str(exc), field=exc.field), 422
        found = _load(request_id)
        return _render_case(found, {exc.field: str(exc)}, request.form, 422, filled="position")
    if wants_json:
        _audit("request.point_corrected", found.id)
        g.session.commit()
        return jsonify(lat=found.lat, lon=found.lon, note=event.note)
    return _done(found, "Le point du domicile est corrigé.", "request.point_corrected")


@bp.post("/<int:request_id>/territoire")
@staff_required(*COORDINATION)
def territory_override(request_id: int) -> ResponseReturnValue:
    found = _load(request_id)
    try:
        override_territory(found, request.form.get("reason", ""), now=utcnow(), user_id=g.user.id)
    except CaseError as exc:
        g.session.rollback()
        found = _load(request_id)
        errors = {exc.field or "override": str(exc)}
        return _render_case(found, errors, request.form, 422, filled="territory_override")
    return _done(found, "La demande est acceptée sur le territoire.", "request.territory_override")


@bp.post("/<int:request_id>/solliciter")
@staff_required(*COORDINATION)
def ask(request_id: int) -> ResponseReturnValue:
    found = _load(request_id)
    now = utcnow()
    try:
        ensure_open(found)  # before the ranking: its refusals would give another reason
        ranking = rank_doctors(g.session, g.territory, found, now, k=50)
        distances: dict[int, float | None] = {
            c.doctor.id: c.distance_km for c in ranking.candidates
        }
        distances.update({d.doctor.id: d.distance_km for d in ranking.left_out})
        doctors = [(d, distances.get(d.id)) for d in doctors_by_ids(g.session, _doctor_ids())]
        if request.form.get("mode") == "cascade":
            start_cascade(g.session, g.territory, found, links=_links(), now=now, user_id=g.user.id)
            message = "La cascade est lancée : le médecin le plus proche est sollicité."
        else:
            ask_doctors(
                g.session, g.territory, found, doctors, links=_links(), now=now, user_id=g.user.id
            )
            message = f"{len(doctors)} médecin(s) sollicité(s)."
    except (CaseError, NoPatientPoint) as exc:
        return _refused(found, CaseError(str(exc)))
    return _done(found, message, "request.doctors_asked")


@bp.post("/<int:request_id>/proposition")
@staff_required(*COORDINATION)
def proposal(request_id: int) -> ResponseReturnValue:
    found = _load(request_id)
    form = request.form
    chosen = with_distances(g.session, found, doctors_by_ids(g.session, _doctor_ids()))
    channels = frozenset(Channel(c) for c in form.getlist("channels") if c in ("sms", "email"))
    if form.get("mode") == "preview":  # redraft the texts for the ticked doctors, change nothing
        return _render_case(found, chosen_ids=[d.id for d, _ in chosen] or [0])
    try:
        if form.get("mode") == "phone":
            outcome = form.get("outcome", "")
            record_phone_call(
                found,
                CallOutcome(outcome) if outcome in CallOutcome._value2member_map_ else None,
                chosen,
                note=form.get("call_note", ""),
                now=utcnow(),
                user_id=g.user.id,
            )
            message = "L'appel est enregistré."
        else:
            sent = send_proposal(
                g.session,
                g.territory,
                found,
                ProposalInput(
                    chosen,
                    channels,
                    form.get("sms_body", ""),
                    form.get("email_subject", ""),
                    form.get("email_body", ""),
                    nonce=form.get("nonce", ""),
                    again=form.get("again") == "1",
                ),
                now=utcnow(),
                user_id=g.user.id,
            )
            message = f"Proposition envoyée ({', '.join(CHANNEL_WORDS[c] for c in sent)})."
    except CaseError as exc:
        g.session.rollback()
        found = _load(request_id)
        return _render_case(
            found,
            {exc.field or "proposal": str(exc)},
            form,
            422,
            chosen_ids=[d.id for d, _ in chosen] or None,
            channels=set(form.getlist("channels")),
            filled="proposal",
        )
    return _done(found, message, "request.proposal")


@bp.post("/<int:request_id>/orientee")
@staff_required(*COORDINATION)
def oriented(request_id: int) -> ResponseReturnValue:
    found = _load(request_id)
    raw = request.form.get("doctor_id", "")
    try:
        mark_oriented(
            g.session,
            found,
            int(raw) if raw.isdigit() else None,
            now=utcnow(),
            user_id=g.user.id,
        )
    except CaseError as exc:
        return _refused(found, exc)
    return _done(found, "La demande est orientée.", "request.oriented")


@bp.post("/<int:request_id>/cloture")
@staff_required(*COORDINATION)
def close(request_id: int) -> ResponseReturnValue:
    found = _load(request_id)
    try:
        close_request(
            g.session, found, request.form.get("reason", ""), now=utcnow(), user_id=g.user.id
        )
    except CaseError as exc:
        g.session.rollback()
        found = _load(request_id)
        return _render_case(found, {"close_reason": str(exc)}, request.form, 422, filled="close")
    return _done(found, "La demande est clôturée.", "request.closed")


def _case_again(filled: str) -> Callable[..., str]:
    """The request page with what was typed in its form `filled` (see keep_through_login)."""

    @staff_required(*COORDINATION)
    def again(notice: str, values: Typed, request_id: int) -> str:
        found = _load(request_id)
        _audit("request.read", found.id)
        g.session.commit()
        # The proposal's ticks as they were left; after another form, the page's defaults.
        ticked = filled == "proposal" and values.get("mode") != "phone"
        return _case_page(
            found,
            values=values,
            chosen_ids=[int(i) for i in values.getlist("doctor_ids") if i.isdigit()] or None,
            channels=set(values.getlist("channels")) if ticked else None,
            filled=filled,
            notice=notice,
        )

    return again


# A proposal written, a reason typed past the end of the session is not lost: the request
# page comes back with it after logging in again (see keep_through_login). The other forms
# (ask doctors, oriented) are a tick or a choice: the login brings the coordinator back to the
# page to do it again.
keep_through_login(bp, {
    f"requests_staff.{name}": _case_again(name)
    for name in ("position", "territory_override", "proposal", "close")
})  # fmt: skip
