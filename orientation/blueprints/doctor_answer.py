"""Answers through signed links, no password: a doctor accepts or declines a patient; a patient
confirms the proposal. A tampered, expired or replayed link changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, render_template, request
from flask.typing import ResponseReturnValue

from models import Status, Territory, utcnow
from orientation.blueprints.patient import erased_page
from orientation.db import db_session
from orientation.extensions import limiter
from orientation.links import LinkExpired, LinkInvalid, LinkPurpose, LinkSigner
from orientation.services import audit
from orientation.services.doctor_contacts import (
    ANSWERS,
    ANSWERS_OFFERED,
    AnswerCase,
    AnswerOutcome,
    anonymised_case,
    answer_state,
    load_answer_case,
    record_answer,
)
from orientation.services.patient_link import RequestErased, request_of_token
from orientation.services.proposal import confirm_orientation
from orientation.services.request_case import CaseError
from orientation.services.workflow import ProcessingLimited

bp = Blueprint("doctor_answer", __name__)


def _signer() -> LinkSigner:
    return LinkSigner(current_app.extensions["orientation.settings"].secret_key)


def _bad_link(expired: bool, territory: Territory | None = None) -> ResponseReturnValue:
    return render_template(
        "doctor_answer/bad_link.html", expired=expired, territory=territory
    ), 410 if expired else 404


def _expired_answer_link(token: str) -> ResponseReturnValue:
    """The expired page, naming the CPTS of the contact when the link is genuine."""
    contact_id = _signer().subject_of_expired(LinkPurpose.DOCTOR_ANSWER, token)
    case = load_answer_case(db_session(), contact_id) if contact_id is not None else None
    return _bad_link(expired=True, territory=case.territory if case else None)


def _answer_page(case: AnswerCase, link_answer: str, now: datetime, refused: bool = False) -> str:
    """The case and the buttons this link offers (see ANSWERS_OFFERED)."""
    # An anonymised request shows nothing of the patient (its initials are blanked).
    erased = case.request.anonymised_at is not None
    return render_template(
        "doctor_answer/answer.html",
        case=None if erased else anonymised_case(case.request, now.date()),
        territory=case.territory,
        suggested=link_answer,
        offered=ANSWERS_OFFERED[link_answer],
        refused=refused,
        state=answer_state(case),
        contact=case.contact,
    )


@bp.route("/medecin/reponse/<token>", methods=["GET", "POST"])
@limiter.limit("30 per minute")
def answer(token: str) -> ResponseReturnValue:
    try:
        claims = _signer().read(LinkPurpose.DOCTOR_ANSWER, token)
    except LinkExpired:
        return _expired_answer_link(token)
    except LinkInvalid:
        return _bad_link(expired=False)
    session = db_session()
    case = load_answer_case(session, claims.subject_id)
    if case is None or claims.extra not in ANSWERS:
        return _bad_link(expired=False)
    now = utcnow()
    if request.method == "GET":
        return _answer_page(case, claims.extra, now)
    choice = request.form.get("answer", "")
    if choice not in ANSWERS:
        choice = claims.extra
    if choice not in ANSWERS_OFFERED[claims.extra]:
        # An accept posted through the "Non" link (a page kept from before, or a crafted
        # form): nothing is recorded, and the page says which link accepts.
        return _answer_page(case, claims.extra, now, refused=True), 400
    outcome = record_answer(session, case, choice == "accept", now)
    if outcome is AnswerOutcome.NO_CAPACITY:
        session.rollback()  # the contact stays open: the doctor may free a place and retry
    else:
        audit.record(
            session,
            "doctor.answer",
            territory_id=case.territory.id,
            actor_label=f"doctor:{case.doctor.id}",
            object_type="doctor_contact",
            object_id=case.contact.id,
            ip=request.remote_addr or "",
            outcome=outcome.value,
        )
        session.commit()
    return render_template(
        "doctor_answer/result.html",
        outcome=outcome.value,
        territory=case.territory,
        contact=case.contact,
        proposed=case.request.status is Status.PROPOSED,
    )


@bp.post("/suivi/<token>/confirmer")
@limiter.limit("20 per minute")
def patient_confirm(token: str) -> ResponseReturnValue:
    session = db_session()
    try:
        # The same reading as every /suivi page: a link replaced by a new one confirms nothing.
        found = request_of_token(session, _signer(), token)
    except RequestErased as erased:
        return erased_page(erased)
    except LinkExpired:
        return _bad_link(expired=True)
    except LinkInvalid:
        return _bad_link(expired=False)
    try:
        confirm_orientation(session, found, utcnow())
    except CaseError as exc:
        session.rollback()
        return render_template("doctor_answer/confirmed.html", error=str(exc), token=token), 409
    except ProcessingLimited:
        session.rollback()
        return render_template("doctor_answer/confirmed.html", limited=True, token=token), 409
    audit.record(
        session,
        "request.patient_confirmed",
        territory_id=found.territory_id,
        actor_label="patient",
        object_type="request",
        object_id=found.id,
        ip=request.remote_addr or "",
    )
    session.commit()
    return render_template("doctor_answer/confirmed.html", error="", token=token)
