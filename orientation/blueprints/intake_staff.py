"""Intake by staff: the coordinator on the phone line, and the referral form for professionals."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, g, render_template, request
from flask.typing import ResponseReturnValue

from models import Role, Source
from orientation.auth import staff_required
from orientation.blueprints.auth import keep_through_login
from orientation.blueprints.intake_common import form_context, settings, submit
from orientation.services.intake_validation import IntakeInvalid, SpamSuspected, form_to_payload

bp = Blueprint("intake_staff", __name__)

PHONE_LINE = (Role.COORDINATOR, Role.CPTS_ADMIN)
REFERRERS = (Role.REFERRER, Role.COORDINATOR, Role.CPTS_ADMIN)


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
    return render_template(
        "intake/staff_confirmation.html",
        territory=g.territory,
        req=result,
        link=f"{settings().base_url}/suivi/{result.token}",
        source=source,
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


def _form_again(template: str) -> Callable[[str, dict[str, str]], str]:
    def again(notice: str, values: dict[str, str]) -> str:
        # The same nonce: sending it again cannot make a second request.
        context = form_context(values, nonce=values.get("nonce", ""), notice=notice)
        return render_template(template, territory=g.territory, **context)

    return again


# A session that expired during a call loses nothing typed (see keep_through_login).
keep_through_login(bp, {
    "intake_staff.phone_intake": staff_required(*PHONE_LINE)(_form_again("intake/phone.html")),
    "intake_staff.referral": staff_required(*REFERRERS)(_form_again("intake/referral.html")),
})  # fmt: skip
