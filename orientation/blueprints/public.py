"""Public pages: the home page listing the CPTS hosted here, and a health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from orientation.db import db_session
from orientation.services.territories import all_territories

bp = Blueprint("public", __name__)


@bp.get("/")
def home() -> ResponseReturnValue:
    territories = list(all_territories(db_session()))
    return render_template("public/home.html", territories=territories)


@bp.get("/sante")
def health() -> ResponseReturnValue:
    """For load balancers and timers: the database answers."""
    db_session().execute(text("SELECT 1"))
    return jsonify(status="ok")
