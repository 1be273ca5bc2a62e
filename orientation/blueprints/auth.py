"""Staff login and logout."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from models import Role, utcnow
from orientation.auth import Staff
from orientation.db import db_session
from orientation.extensions import limiter
from orientation.services.accounts import LoginAttempt, LoginRefused, authenticate

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


@bp.route("/connexion", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def login() -> ResponseReturnValue:
    form = LoginForm()
    if form.validate_on_submit():
        database = db_session()
        attempt = LoginAttempt(
            email=form.email.data or "",
            password=form.password.data or "",
            ip=request.remote_addr or "",
        )
        try:
            user = authenticate(database, attempt, utcnow())
        except LoginRefused as refused:
            database.commit()  # the failure is audited and counted
            message = (
                "Trop d'essais : ce compte est bloqué 15 minutes."
                if refused.locked
                else "Adresse e-mail ou mot de passe incorrect."
            )
            form.password.errors = [message]
            return render_template("auth/login.html", form=form), 401
        database.commit()
        session.clear()  # a fresh session on login (no fixation)
        login_user(Staff(user))
        session.permanent = True
        return redirect(_safe_next(request.args.get("next"), user.role))
    return render_template("auth/login.html", form=form)


@bp.post("/deconnexion")
def logout() -> ResponseReturnValue:
    logout_user()
    session.clear()
    flash("Vous êtes déconnecté.", "info")
    return redirect(url_for("auth.login"))
