"""Staff login and logout, and staff forms kept through a new login when the session expired."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import cast
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_login import current_user, logout_user
from flask_login.utils import login_url
from flask_wtf import FlaskForm
from flask_wtf.csrf import CSRFError
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from models import Role, utcnow
from orientation.auth import Staff, log_in
from orientation.blueprints import NOT_TAKEN, error_page, sent_from, show_forms_again
from orientation.db import db_session
from orientation.extensions import limiter, login_manager
from orientation.services.accounts import (
    LOCKOUT,
    MAX_FAILED_LOGINS,
    LoginAttempt,
    LoginRefused,
    authenticate,
    end_sessions,
)

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField(
        "Adresse e-mail",
        validators=[DataRequired("Indiquez votre adresse e-mail."), Length(max=254)],
    )
    password = PasswordField(
        "Mot de passe",
        validators=[DataRequired("Indiquez votre mot de passe."), Length(max=200)],
    )


# Where each role starts after logging in.
HOME_OF_ROLE = {
    Role.ADMIN: "admin.index",
    Role.REFERRER: "intake_staff.referral",
    Role.CPTS_ADMIN: "workspace.dashboard",
    Role.COORDINATOR: "workspace.dashboard",
}


def _safe_next(target: str | None, role: Role) -> str:
    """Only same-site paths: an open redirect would help phishing staff."""
    if target and target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for(HOME_OF_ROLE[role])


# A staff form's answers ride through the login page as hidden fields with this prefix: they
# stay in the browser that typed them, never in a cookie or on the server.
CARRIED = "carried-"
# Enough for the questionnaire's fields; a forged POST cannot make the login page grow.
MAX_CARRIED_FIELDS, MAX_CARRIED_NAME = 200, 60
SESSION_EXPIRED = _l(
    "Votre session a expiré : reconnectez-vous. Ce que vous avez saisi n'est pas encore "
    "enregistré ; vous le retrouverez rempli juste après."
)
# One answer to every refusal (unknown e-mail, wrong password, locked from this address): a
# different one would tell which e-mails have an account.
_MINUTES = int(LOCKOUT.total_seconds() // 60)
REFUSED = (
    f"Adresse e-mail ou mot de passe incorrect. Après {MAX_FAILED_LOGINS} essais manqués, la "
    f"connexion depuis ce poste attend {_MINUTES} minutes."
)
WELCOME_BACK = _l("Vous êtes reconnecté : vérifiez les réponses, puis enregistrez.")

# Staff forms kept through a new login: endpoint -> the page showing that form again, given
# why (a notice), the answers typed (a MultiDict: ticked boxes share a name) and the URL's
# arguments (as the view gets them). It is a staff view (staff_required): it checks who is
# logged in, and refuses (403) a user whose role may not use the form.
Typed = MultiDict[str, str]
FormAgain = Callable[..., str]
_KEPT: dict[str, FormAgain] = {}


def keep_through_login(bp: Blueprint, forms: Mapping[str, FormAgain]) -> None:
    """An expired session loses nothing typed in `forms` (endpoint: page shown again).

    The session cookie lasts a working day. A coordinator who fills in the phone form past it
    (or after the laptop slept) would otherwise press "Enregistrer" onto an error page and lose
    the call's answers. Instead the login page comes, holding them; once logged in, the form
    comes back filled in, to check and send (its nonce kept: sending twice makes one request).
    """
    _KEPT.update(forms)

    def not_taken(error: CSRFError) -> ResponseReturnValue:
        again = _KEPT.get(request.endpoint or "") if request.method == "POST" else None
        if again is None:
            return error_page(error)
        if not current_user.is_authenticated:  # the session, its token and its login are gone
            return _login_keeping_form()
        if not _posted_from_this_site():  # not the user's own typing: nothing to show again
            return error_page(error)
        # Still logged in with another token: logged in again in another tab, say.
        typed = _typed(request.form.items(multi=True))
        try:
            return again(str(NOT_TAKEN[400]), typed, **(request.view_args or {})), 400
        except HTTPException:  # the form cannot be shown (no such template...): say why not
            return error_page(error)

    bp.register_error_handler(CSRFError, not_taken)


@login_manager.unauthorized_handler
def _unauthorized() -> ResponseReturnValue:
    """Flask-Login's own answer (the login page, coming back here after), except for a kept
    form's POST: then the login page holds what was typed."""
    if request.method == "POST" and request.endpoint in _KEPT:
        return _login_keeping_form()
    flash(str(login_manager.login_message), login_manager.login_message_category)
    return redirect(login_url(str(login_manager.login_view), next_url=request.url))


def _typed(fields: Iterable[tuple[str, str]]) -> Typed:
    kept = [
        (name, value)
        for name, value in fields
        if name != "csrf_token" and len(name) <= MAX_CARRIED_NAME
    ]
    return MultiDict(kept[:MAX_CARRIED_FIELDS])


def _carried() -> Typed:
    """The answers a login POST carries back to their form: only from a page of this site,
    else another site could post made-up answers to the login page itself."""
    if not _posted_from_this_site():
        return Typed()
    return _typed(
        (name.removeprefix(CARRIED), value)
        for name, value in request.form.items(multi=True)
        if name.startswith(CARRIED)
    )


def _login_keeping_form() -> ResponseReturnValue:
    """The login page in answer to a kept form's POST, holding what it carried."""
    # Only answers typed on this site: another site's page could otherwise post a form here
    # (no token needed to be refused) and have a coordinator log in onto answers it chose.
    carried = _typed(request.form.items(multi=True)) if _posted_from_this_site() else Typed()
    return _login_page(LoginForm(formdata=None), carried, target=request.path), 401


def _posted_from_this_site() -> bool:
    """The browser says this POST came from a page of this site (staff forms: it must)."""
    return sent_from() == "same-origin"


def _form_again(target: str, carried: Typed) -> str | None:
    """The kept form at `target` filled in with `carried`, for the user now logged in; None
    when `target` is no kept form or this user may not use it (another person logged in)."""
    try:
        endpoint, arguments = current_app.url_map.bind("").match(
            urlsplit(target).path, method="POST"
        )
    except HTTPException:
        return None
    again = _KEPT.get(str(endpoint))
    if again is None:
        return None
    try:
        return again(str(WELCOME_BACK), carried, **arguments)
    except HTTPException:  # 403: not this user's form; 404: nothing there to fill in
        return None


@bp.route("/connexion", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    carried = _carried() if request.method == "POST" else Typed()
    target = request.args.get("next")
    if form.validate_on_submit():
        database = db_session()
        attempt = LoginAttempt(
            email=form.email.data or "",
            password=form.password.data or "",
            ip=request.remote_addr or "",
        )
        try:
            user = authenticate(database, attempt, utcnow())
        except LoginRefused:
            database.commit()  # the failure is audited and counted
            form.password.errors = [REFUSED]
            return _login_page(form, carried, target), 401
        database.commit()
        session.clear()  # a fresh session on login (no fixation)
        # ...and a fresh CSRF token for a form shown by this same response: Flask-WTF keeps
        # the one it made (of the cleared session) in g for the rest of the request.
        g.pop(current_app.config["WTF_CSRF_FIELD_NAME"], None)
        log_in(user)
        session.permanent = True
        next_page = _safe_next(target, user.role)
        if carried:  # a kept form: shown again, or home when this user may not use it
            kept = _form_again(next_page, carried)
            return kept if kept is not None else redirect(url_for(HOME_OF_ROLE[user.role]))
        return redirect(next_page)
    return _login_page(form, carried, target)


def _login_page(form: LoginForm, carried: Typed, target: str | None, notice: str = "") -> str:
    notice = notice or (str(SESSION_EXPIRED) if carried else "")
    return render_template("auth/login.html", form=form, carried=carried, next=target,
                           notice=notice)  # fmt: skip


def _login_again(notice: str) -> str:
    # The e-mail typed stays, and so does a kept form's answers; the password is typed again.
    carried, target = _carried(), request.args.get("next")
    if carried and target and current_user.is_authenticated:
        # The page of a kept form shown after logging in is the login's answer: reloading it
        # sends the login again, with the token of before that login. Already logged in, the
        # user gets the form back rather than a second login.
        role = cast(Staff, current_user._get_current_object()).user.role
        kept = _form_again(_safe_next(target, role), carried)
        if kept is not None:
            return kept
    return _login_page(LoginForm(), carried, target, notice)


# The login page left open overnight (its token expired) or sent too often comes back.
show_forms_again(bp, {"auth.login": _login_again})


@bp.post("/deconnexion")
def logout() -> ResponseReturnValue:
    if current_user.is_authenticated:
        # Ends this session everywhere it was copied, and the user's other sessions with it.
        database = db_session()
        end_sessions(cast(Staff, current_user._get_current_object()).user)
        database.commit()
    logout_user()
    session.clear()
    flash("Vous êtes déconnecté, sur cet appareil et sur vos autres appareils.", "info")
    return redirect(url_for("auth.login"))
