"""One blueprint per audience: public (patients), auth, workspace (coordinators)."""

from __future__ import annotations

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException


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

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        code = exc.code or 500
        return render_template("error.html", code=code, error=exc), code
