"""What the public questionnaire, the phone line, the referral form and the API share."""

from __future__ import annotations

import secrets
from typing import Any

from flask import current_app, request
from sqlalchemy.orm import Session

from geo.geocoding import Geocoder, make_geocoder
from models import Source, Territory, utcnow
from orientation.config import Settings
from orientation.db import db_session
from orientation.links import LinkSigner
from orientation.services.intake import (
    IntakeTerritory,
    RecentTerritories,
    SubmissionKeyReused,
    Submitted,
    submit_request,
)
from orientation.services.intake_validation import (
    LIMITS,
    MAX_PERSONS,
    IntakeInvalid,
    validate_submission,
)

# Staff fill these in for a patient: the form and its messages speak of the patient.
STAFF_SOURCES = frozenset({Source.PHONE, Source.PROFESSIONAL})


def settings() -> Settings:
    result: Settings = current_app.extensions["orientation.settings"]
    return result


def geocoder() -> Geocoder:
    """One geocoder per application (the BAN extract is loaded once)."""
    extensions = current_app.extensions
    if "orientation.geocoder" not in extensions:
        config = settings()
        extensions["orientation.geocoder"] = make_geocoder(config.geocoder, config.ban_address_file)
    result: Geocoder = extensions["orientation.geocoder"]
    return result


def signer() -> LinkSigner:
    """One link signer per application (it keeps its serializers)."""
    extensions = current_app.extensions
    if "orientation.signer" not in extensions:
        extensions["orientation.signer"] = LinkSigner(settings().secret_key)
    result: LinkSigner = extensions["orientation.signer"]
    return result


def intake_territory(slug: str) -> IntakeTerritory | None:
    """What a submission needs of the CPTS of `slug` (read again after a second at most)."""
    extensions = current_app.extensions
    if "orientation.territories" not in extensions:
        extensions["orientation.territories"] = RecentTerritories()
    recent: RecentTerritories = extensions["orientation.territories"]
    return recent.get(db_session(), slug)


def client_ip() -> str:
    return request.remote_addr or ""


def new_nonce() -> str:
    """The hidden submission key of a freshly shown form (idempotent submission)."""
    return secrets.token_urlsafe(24)


def submit(
    session: Session,
    territory: Territory | IntakeTerritory,
    payload: dict[str, Any],
    *,
    source: Source,
    submission_key: str,
    referrer_id: int | None = None,
    actor_user_id: int | None = None,
) -> Submitted:
    """Validate (raising IntakeInvalid or SpamSuspected) and create the request.

    The API raises SubmissionKeyReused for a key sent again with other answers. A form's key
    is the nonce it was shown with, random and in that browser only: a form sent again with
    changes (the back button after the confirmation) gets the request it already made, whose
    private link lets the person correct it, rather than a second request."""
    now = utcnow()
    data = validate_submission(payload, today=now.date(), about_patient=source in STAFF_SOURCES)
    try:
        return submit_request(
            session,
            territory,
            data,
            source=source,
            now=now,
            geocoder=geocoder(),
            signer=signer(),
            base_url=settings().base_url,
            submission_key=submission_key,
            referrer_id=referrer_id,
            actor_user_id=actor_user_id,
            ip=client_ip(),
        )
    except SubmissionKeyReused as reused:
        if source is Source.API:
            raise
        return reused.earlier


def form_context(
    values: dict[str, Any], error: IntakeInvalid | None = None, nonce: str = "", notice: str = ""
) -> dict[str, Any]:
    """What templates/intake/_questionnaire.html needs (`notice`: why the form was not taken)."""
    return {
        "notice": notice,
        "values": values,
        "errors": error.errors if error else {},
        "commune_choices": error.communes if error else [],
        "nonce": nonce or new_nonce(),
        "limits": LIMITS,
        "max_persons": MAX_PERSONS,
    }
