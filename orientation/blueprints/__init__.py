"""One blueprint per audience: public (patients), auth, workspace (coordinators)."""

from __future__ import annotations

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException


def register(app: Flask) -> None:
    from orientation.blueprints import auth, patient_followup, public, reports, workspace

    app.register_blueprint(public.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(workspace.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(patient_followup.bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[str, int]:
        code = exc.code or 500
        return render_template("error.html", code=code, error=exc), code
