"""Staff accounts: password policy, hashing (argon2id), login with lockout."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Role, User
from orientation.services import audit

_hasher = PasswordHasher()
# A precomputed hash so that an unknown e-mail costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-the-same-cost")

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12


class PasswordTooWeak(ValueError):
    """The password does not meet the minimum policy."""


class LoginRefused(Exception):
    """Wrong e-mail or password, or the account is locked or inactive."""

    def __init__(self, locked: bool = False) -> None:
        super().__init__("locked" if locked else "refused")
        self.locked = locked


def check_password_policy(password: str, email: str = "") -> None:
    """At least 12 characters, not only one kind, not the e-mail itself."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise PasswordTooWeak(f"au moins {MIN_PASSWORD_LENGTH} caractères")
    if password.isdigit() or password.isalpha():
        raise PasswordTooWeak("mélangez lettres et chiffres ou signes")
    if email and password.lower() == email.lower():
        raise PasswordTooWeak("le mot de passe ne peut pas être l'adresse e-mail")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_user(
    session: Session,
    *,
    email: str,
    full_name: str,
    role: Role,
    password: str,
    territory_id: int | None,
    profession: str = "",
) -> User:
    """Add a staff account after checking the password policy."""
    email = email.strip().lower()
    check_password_policy(password, email)
    if role is not Role.ADMIN and territory_id is None:
        raise ValueError("every account but an instance admin belongs to a territory")
    user = User(
        email=email,
        full_name=full_name.strip(),
        role=role,
        territory_id=territory_id,
        profession=profession,
        password_hash=hash_password(password),
    )
    session.add(user)
    return user


def set_password(user: User, password: str) -> None:
    check_password_policy(password, user.email)
    user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None


@dataclass(frozen=True)
class LoginAttempt:
    email: str
    password: str
    ip: str


def authenticate(session: Session, attempt: LoginAttempt, now: datetime) -> User:
    """Return the user whose credentials these are, or raise LoginRefused. Audited either way."""
    email = attempt.email.strip().lower()
    user = session.scalar(select(User).where(func.lower(User.email) == email))
    if user is None or not user.active:
        try:
            _hasher.verify(_DUMMY_HASH, attempt.password)
        except VerificationError:
            pass
        audit.record(
            session, "login.failed", ip=attempt.ip, actor_label=email[:60], reason="unknown"
        )
        raise LoginRefused()
    if user.locked_until is not None and user.locked_until > now:
        audit.record(
            session, "login.locked", user_id=user.id, territory_id=user.territory_id, ip=attempt.ip
        )
        raise LoginRefused(locked=True)
    try:
        _hasher.verify(user.password_hash, attempt.password)
    except (VerificationError, InvalidHashError):
        user.failed_logins += 1
        locked = user.failed_logins >= MAX_FAILED_LOGINS
        if locked:
            user.locked_until = now + LOCKOUT
            user.failed_logins = 0
        audit.record(
            session,
            "login.failed",
            user_id=user.id,
            territory_id=user.territory_id,
            ip=attempt.ip,
            reason="password",
            locked=locked,
        )
        raise LoginRefused(locked=locked) from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(attempt.password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(
        session, "login.success", user_id=user.id, territory_id=user.territory_id, ip=attempt.ip
    )
    return user
