"""Staff sessions (Flask-Login) and the access decorator that injects the actor's territory."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, abort, g, session
from flask_login import UserMixin, current_user, login_required, login_user

from models import Role, Territory, User
from orientation.db import db_session, territory_session
from orientation.extensions import login_manager

F = TypeVar("F", bound=Callable[..., Any])

# The user's session_version when this session logged in (see log_in).
SESSION_VERSION = "session_version"


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Connectez-vous pour accéder à cette page."
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def _load(user_id: str) -> Staff | None:
        if not user_id.isdigit():
            return None
        user = db_session().get(User, int(user_id))
        if user is None or not user.active:
            return None
        # The signed cookie alone proves nothing once its user logged out, got a new password
        # or was deactivated: each raises the version, and a session of before counts as
        # logged out (read from the row loaded anyway: no extra query).
        if session.get(SESSION_VERSION) != user.session_version:
            return None
        return Staff(user)


def log_in(user: User) -> None:
    """Open the staff session of `user`, valid until their session_version changes."""
    login_user(Staff(user))
    session[SESSION_VERSION] = user.session_version


class Staff(UserMixin):
    """The logged-in user as Flask-Login sees it; models stay free of Flask."""

    def __init__(self, user: User) -> None:
        self.user = user

    def get_id(self) -> str:
        return str(self.user.id)

    @property
    def is_active(self) -> bool:
        return self.user.active


def staff_required(*roles: Role) -> Callable[[F], F]:
    """Allow logged-in staff of these roles; set g.user, g.territory and a territory session."""

    def decorator(view: F) -> F:
        @wraps(view)
        @login_required
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = cast(Staff, current_user._get_current_object()).user
            if roles and user.role not in roles:
                abort(403)
            if user.territory_id is None:
                abort(403)
            g.user = user
            g.session = territory_session(user.territory_id)
            g.territory = db_session().get(Territory, user.territory_id)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator
