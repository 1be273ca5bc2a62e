"""Coordinator workspace: what the CPTS has in hand today."""

from __future__ import annotations

from flask import Blueprint, g, render_template
from flask.typing import ResponseReturnValue

from models import OPEN_STATUSES, Role, utcnow
from orientation.auth import staff_required
from orientation.services.overview import territory_overview

bp = Blueprint("workspace", __name__, url_prefix="/espace")


@bp.get("/")
@staff_required(Role.COORDINATOR, Role.CPTS_ADMIN)
def dashboard() -> ResponseReturnValue:
    overview = territory_overview(g.session, g.territory, utcnow())
    return render_template(
        "workspace/dashboard.html",
        overview=overview,
        territory=g.territory,
        open_statuses=OPEN_STATUSES,
    )
