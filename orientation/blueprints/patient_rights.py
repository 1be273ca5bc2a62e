"""A patient's rights through their private link: download their data, erase their request.

The link (LinkPurpose.PATIENT_REQUEST) is the credential: whoever holds it is the patient.
The main page /suivi/<token> belongs to the intake blueprint and links here.
"""

from __future__ import annotations

import json

from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired

from models import Territory, utcnow
from orientation.blueprints.patient import request_of_link
from orientation.db import db_session
from orientation.extensions import limiter
from orientation.services import audit
from orientation.services.rights_access import export_request_data
from orientation.services.rights_erasure import erase_request

bp = Blueprint("patient_rights", __name__, url_prefix="/suivi")

# A token is long and random, but a guessing run must still be slowed down.
LINK_LIMIT = "30 per minute; 300 per hour"


class EraseForm(FlaskForm):
    confirm = BooleanField(
        "Je confirme : effacer mes données et retirer ma demande.",
        validators=[DataRequired("Cochez la case pour confirmer l'effacement.")],
    )


@bp.get("/<token>/donnees.json")
@limiter.limit(LINK_LIMIT)
def download(token: str) -> ResponseReturnValue:
    found = request_of_link(token)
    data = export_request_data(db_session(), found)
    audit.record(
        db_session(),
        "rights.access",
        territory_id=found.territory_id,
        actor_label="patient",
        object_type="request",
        object_id=found.id,
        ip=request.remote_addr or "",
    )
    db_session().commit()
    body = json.dumps(data, ensure_ascii=False, indent=2)
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="demande-{found.reference}.json"',
            "Cache-Control": "no-store",
        },
    )


@bp.route("/<token>/effacer", methods=["GET", "POST"])
@limiter.limit(LINK_LIMIT)
def erase(token: str) -> ResponseReturnValue:
    found = request_of_link(token)
    form = EraseForm()
    if form.validate_on_submit():
        database = db_session()
        erase_request(database, found, utcnow(), reason="patient_request", actor_label="patient")
        audit.record(
            database,
            "rights.erasure",
            territory_id=found.territory_id,
            actor_label="patient",
            object_type="request",
            object_id=found.id,
            ip=request.remote_addr or "",
        )
        database.commit()
        return render_template(
            "rgpd/erased.html", territory=database.get(Territory, found.territory_id)
        )
    return render_template("rgpd/erase.html", form=form, reference=found.reference, token=token), (
        400 if form.errors else 200
    )
