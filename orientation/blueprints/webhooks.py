"""Callbacks from providers: Twilio's delivery reports. No session, no CSRF token: the request
is authenticated by Twilio's signature over our public URL and the posted fields."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, request
from flask.typing import ResponseReturnValue
from twilio.request_validator import RequestValidator

from models import utcnow
from notifications.providers.twilio_sms import STATUS_WEBHOOK_PATH
from notifications.status import apply_twilio_report
from orientation.db import db_session
from orientation.extensions import csrf, limiter
from orientation.services import audit

bp = Blueprint("webhooks", __name__)


@bp.post(STATUS_WEBHOOK_PATH)
@csrf.exempt
@limiter.limit("600/minute")
def twilio_status() -> ResponseReturnValue:
    settings = current_app.extensions["orientation.settings"]
    session = db_session()
    # Twilio signs the URL it called: ours as the public sees it (behind the proxy), not
    # whatever Host header reached us.
    url = settings.base_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode()
    signature = request.headers.get("X-Twilio-Signature", "")
    form = request.form.to_dict()
    valid = bool(settings.twilio_auth_token) and RequestValidator(
        settings.twilio_auth_token
    ).validate(url, form, signature)
    if not valid:
        audit.record(
            session,
            "webhook_bad_signature",
            actor_label="twilio?",
            object_type="message",
            object_id=form.get("MessageSid", "")[:40],
            ip=request.remote_addr or "",
            path=request.path,
        )
        session.commit()
        abort(403)
    apply_twilio_report(
        session,
        idempotency_key=request.args.get("m", ""),
        sid=form.get("MessageSid", ""),
        twilio_status=form.get("MessageStatus", ""),
        error_code=form.get("ErrorCode", ""),
        now=utcnow(),
    )
    session.commit()
    return "", 204
