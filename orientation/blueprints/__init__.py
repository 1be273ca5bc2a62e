"""One blueprint per audience: public (patients), auth, workspace (coordinators)."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from orientation.ratelimit import RateLimited

# What the JSON API answers when a client sends too much (professional software reads JSON).
API_TOO_MANY = "Trop de demandes depuis cette adresse : réessayez après le délai de Retry-After."


def register(app: Flask) -> None:
    from orientation.blueprints import (
        admin,
        api,
        auth,
        doctor_answer,
        doctor_self,
        doctor_sites_staff,
        doctors_staff,
        flyers,
        intake_staff,
        outbox,
        patient,
        patient_followup,
        patient_rights,
        public,
        reports,
        requests_staff,
        rgpd,
        vendor,
        webhooks,
        workspace,
    )

    for blueprint in (
        public.bp,
        auth.bp,
        workspace.bp,
        patient.bp,
        intake_staff.bp,
        flyers.bp,
        api.bp,
        requests_staff.bp,
        doctor_answer.bp,
        doctors_staff.bp,
        doctor_sites_staff.bp,
        doctor_self.bp,
        vendor.bp,
        webhooks.bp,
        outbox.bp,
        admin.bp,
        rgpd.bp,
        patient_rights.bp,
        reports.bp,
        patient_followup.bp,
    ):
        app.register_blueprint(blueprint)

    app.register_error_handler(HTTPException, error_page)


def error_page(exc: HTTPException) -> ResponseReturnValue:
    """The error page (JSON on the API when a client sends too much)."""
    code = exc.code or 500
    if isinstance(exc, RateLimited) and request.path.startswith("/api/"):
        return jsonify(errors={"_request": API_TOO_MANY}), code
    return render_template("error.html", code=code, error=exc), code
