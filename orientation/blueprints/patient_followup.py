"""Public pages reached from a signed link: the follow-up after a proposal and the survey.

French, phone-first, no JavaScript. A link that was tampered with, has expired or was already
answered gets a page that says so plainly.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from flask import request as http
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length

from models import Status, Territory, utcnow
from orientation.blueprints import show_forms_again
from orientation.db import db_session
from orientation.extensions import limiter
from orientation.links import LinkExpired, LinkInvalid, LinkSigner
from orientation.services import followup, survey
from orientation.services.patient_link import audit_read
from orientation.services.patient_links import AlreadyAnswered
from orientation.services.workflow import ProcessingLimited

bp = Blueprint("patient_followup", __name__)
YES_NO_PAIRS = [("oui", "Oui"), ("non", "Non")]


def _choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class FollowUpForm(FlaskForm):
    appointment = RadioField(
        "Avez-vous obtenu un premier rendez-vous avec le médecin proposé ?",
        choices=_choices(YES_NO_PAIRS),
        validators=[InputRequired("Répondez par oui ou par non.")],
    )
    declared = RadioField(
        "Avez-vous fait la déclaration de médecin traitant avec ce médecin ?",
        choices=_choices(YES_NO_PAIRS),
        validators=[InputRequired("Répondez par oui ou par non.")],
    )


class SurveyForm(FlaskForm):
    found_gp = RadioField(
        "Avez-vous trouvé un médecin traitant ?",
        choices=_choices(YES_NO_PAIRS),
        validators=[InputRequired("Répondez par oui ou par non.")],
    )
    satisfaction = RadioField(
        "Êtes-vous satisfait(e) de l'aide reçue ?",
        choices=_choices(
            [("1", "1 – pas du tout"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "5 – très")]
        ),
        validators=[InputRequired("Choisissez une note de 1 à 5.")],
    )
    comment = TextAreaField(
        "Un commentaire ? (facultatif)",
        validators=[Length(max=survey.COMMENT_MAX, message="1000 caractères au plus.")],
    )


def _signer() -> LinkSigner:
    return LinkSigner(current_app.extensions["orientation.settings"].secret_key)


def _link_problem(exc: Exception) -> ResponseReturnValue:
    if isinstance(exc, AlreadyAnswered):
        return render_template("followup/link_problem.html", problem="answered"), 409
    if isinstance(exc, ProcessingLimited):
        return render_template("followup/link_problem.html", problem="limited"), 409
    if isinstance(exc, LinkExpired):
        return render_template("followup/link_problem.html", problem="expired"), 410
    return render_template("followup/link_problem.html", problem="invalid"), 404


@bp.route("/suivi/rendez-vous/<token>", methods=["GET", "POST"])
@limiter.limit("30/minute")
def follow_up(token: str) -> ResponseReturnValue:
    session = db_session()
    try:
        request = followup.open_follow_up(session, _signer(), token)
    except (LinkInvalid, AlreadyAnswered, ProcessingLimited) as exc:
        return _link_problem(exc)
    territory = session.get(Territory, request.territory_id)
    form = FollowUpForm()
    if form.validate_on_submit():
        answer = followup.FollowUpAnswer(
            got_appointment=form.appointment.data == "oui",
            declared_doctor=form.declared.data == "oui",
        )
        try:
            status = followup.answer_follow_up(
                session, request, answer, utcnow(), ip=http.remote_addr or ""
            )
        except ProcessingLimited as exc:  # limited while the form was open
            session.rollback()
            return _link_problem(exc)
        return render_template(
            "followup/follow_up_done.html",
            answer=answer,
            oriented=status is Status.ORIENTED,
            territory=territory,
        )
    # The page names the patient's request: a read, audited as /suivi/<token> is.
    audit_read(session, request, http.remote_addr or "", page="follow_up")
    return render_template("followup/follow_up.html", form=form, territory=territory)


@bp.route("/enquete/<token>", methods=["GET", "POST"])
@limiter.limit("30/minute")
def satisfaction_survey(token: str) -> ResponseReturnValue:
    session = db_session()
    try:
        request, year = survey.open_survey(session, _signer(), token)
    except (LinkInvalid, AlreadyAnswered) as exc:
        return _link_problem(exc)
    territory = session.get(Territory, request.territory_id)
    form = SurveyForm()
    if form.validate_on_submit():
        answer = survey.SurveyInput(
            found_gp=form.found_gp.data == "oui",
            satisfaction=int(form.satisfaction.data or 0),
            comment=form.comment.data or "",
        )
        try:
            survey.answer_survey(session, request, year, answer)
        except AlreadyAnswered as exc:  # the same link posted twice at once
            return _link_problem(exc)
        return render_template("followup/survey_done.html", territory=territory)
    return render_template("followup/survey.html", form=form, territory=territory, year=year)


def _follow_up_again(notice: str, token: str) -> str | None:
    session = db_session()
    try:
        request = followup.open_follow_up(session, _signer(), token)
    except (LinkInvalid, AlreadyAnswered, ProcessingLimited):
        return None  # the error page; the link's own page says why on the next visit
    audit_read(session, request, http.remote_addr or "", page="follow_up")
    territory = session.get(Territory, request.territory_id)
    return render_template(
        "followup/follow_up.html", form=FollowUpForm(), territory=territory, notice=notice
    )


def _survey_again(notice: str, token: str) -> str | None:
    session = db_session()
    try:
        request, year = survey.open_survey(session, _signer(), token)
    except (LinkInvalid, AlreadyAnswered):
        return None
    territory = session.get(Territory, request.territory_id)
    return render_template("followup/survey.html", form=SurveyForm(), territory=territory,
                           year=year, notice=notice)  # fmt: skip


show_forms_again(bp, {
    "patient_followup.follow_up": _follow_up_again,
    "patient_followup.satisfaction_survey": _survey_again,
})  # fmt: skip
