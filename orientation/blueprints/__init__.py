"""One blueprint per audience: public (patients), auth, workspace (coordinators)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from orientation.ratelimit import RateLimited

# What the JSON API answers when a client sends too much (professional software reads JSON).
API_TOO_MANY = "Trop de demandes depuis cette adresse : réessayez après le délai de Retry-After."
# What the API says, in JSON like its other answers, where the site would show an error page.
API_ERRORS = {
    400: "Requête mal formée.",
    404: "Cette adresse n'existe pas dans l'API : voir /api/openapi.json.",
    405: "Méthode non permise à cette adresse : voir l'en-tête Allow.",
    413: "Requête trop volumineuse.",
}


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
    """The error page; on the API, JSON with a French message, as its other answers."""
    code = exc.code or 500
    if request.path.startswith("/api/"):
        message = (
            API_TOO_MANY
            if isinstance(exc, RateLimited)
            else API_ERRORS.get(code, "La requête n'a pas abouti.")
        )
        # The exception's own headers (Allow on a 405) without its HTML content type.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return jsonify(errors={"_request": message}), code, headers
    return render_template("error.html", code=code, error=exc), code


# Why a form's POST was refused before its view ran, said above the form shown again.
NOT_TAKEN = {
    429: _l("Trop de demandes depuis cette connexion : patientez une minute, puis renvoyez."),
    400: _l("Le formulaire a expiré : vérifiez vos réponses, puis renvoyez-le."),
}


def show_forms_again(bp: Blueprint, forms: Mapping[str, Callable[..., str | None]]) -> None:
    """A POST to one of `forms`' endpoints refused before its view ran (too many from this
    address: 429; the session and its CSRF token gone, say a phone's browser restarted: 400)
    shows that form again with everything typed in it and why, rather than an error page that
    loses it. Nothing was saved. `forms[endpoint](notice, **view_args)` (the URL's arguments,
    as the view gets them) renders the page, or returns None when it cannot (the link has
    expired...): then the error page."""

    def not_taken(error: HTTPException) -> ResponseReturnValue:
        again = forms.get(request.endpoint or "") if request.method == "POST" else None
        code = 429 if isinstance(error, RateLimited) else 400
        if code == 400 and sent_from() in ("cross-site", "same-site"):
            # Another site's page posted it: not the person's typing, nothing to show again
            # (else that page could have a person send answers it wrote). A browser that
            # says nothing of the page (an old phone's) still gets its answers back.
            again = None
        page = (
            again(str(NOT_TAKEN[code]), **(request.view_args or {})) if again is not None else None
        )
        return error_page(error) if page is None else (page, code)

    bp.register_error_handler(RateLimited, not_taken)
    bp.register_error_handler(CSRFError, not_taken)


def sent_from() -> str:
    """What the browser says of the page that sent this request: Sec-Fetch-Site's value
    ("same-origin", "same-site", "cross-site", "none"), else from Origin "same-origin" or
    "cross-site"; "" when it says neither (an old browser, a script)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site
    origin = request.headers.get("Origin")
    if origin is None:
        return ""
    base_url = current_app.extensions["orientation.settings"].base_url
    ours = {request.host_url.rstrip("/"), base_url.rstrip("/")}
    return "same-origin" if origin in ours else "cross-site"
