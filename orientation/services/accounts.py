"""Staff accounts: password policy, hashing (argon2id), login with lockout, session versions.

Wrong passwords are counted per account AND client address (models.user.LoginFailure): five
from one address within LOCKOUT close the account to that address only, so that someone
elsewhere who knows a coordinator's e-mail cannot lock them out. A refusal reads the same for
an unknown e-mail, a wrong password and a locked account, and costs the same hashing time:
the login page tells nobody which addresses have an account.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import and_, case, delete, func, literal, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql.dml import ReturningInsert

from models import Role, User
from models.user import LoginFailure
from orientation.services import audit

_hasher = PasswordHasher()
# A precomputed hash so that an unknown e-mail costs the same time as a wrong password.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-the-same-cost")

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 12


class PasswordTooWeak(ValueError):
    """The password does not meet the minimum policy."""


# The audit trail cannot be edited: what was typed in the e-mail field is kept only when it is
# an e-mail address, never a password typed in the wrong field.
NOT_AN_EMAIL = "(saisie qui n'est pas une adresse e-mail)"


class LoginRefused(Exception):
    """Wrong e-mail or password, or the account is locked (from this address) or inactive.

    Deliberately one case: the caller must answer them all alike."""


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
    """A new password: the sessions opened with the old one end (see end_sessions)."""
    check_password_policy(password, user.email)
    user.password_hash = hash_password(password)
    end_sessions(user)


def end_sessions(user: User) -> None:
    """Every session of this user, on every device, stops counting at its next request.

    Two bumps at once may write the same number: it still differs from the sessions' own."""
    user.session_version += 1


def lift_lockouts(session: Session, user: User) -> None:
    """Forget the wrong passwords counted against this account, from every address."""
    session.execute(delete(LoginFailure).where(LoginFailure.user_id == user.id))


@dataclass(frozen=True)
class LoginAttempt:
    email: str
    password: str
    ip: str


def _label_of(typed: str) -> str:
    """What the audit keeps of an e-mail field that names no account."""
    if len(typed) > 254:
        return NOT_AN_EMAIL
    try:
        validate_email(typed, check_deliverability=False)
    except EmailNotValidError:
        return NOT_AN_EMAIL
    return typed[:60]


def _spend_hashing_time(password: str) -> None:
    """What checking a password costs, for refusals that check none."""
    try:
        _hasher.verify(_DUMMY_HASH, password)
    except VerificationError:
        pass


def authenticate(session: Session, attempt: LoginAttempt, now: datetime) -> User:
    """Return the user whose credentials these are, or raise LoginRefused. Audited either way."""
    email = attempt.email.strip().lower()
    user = session.scalar(select(User).where(func.lower(User.email) == email))
    if user is None or not user.active:
        _spend_hashing_time(attempt.password)
        audit.record(
            session, "login.failed", ip=attempt.ip, actor_label=_label_of(email), reason="unknown"
        )
        raise LoginRefused()
    # Fresh from the database: the count is written by one statement that bypasses the
    # session's objects (_count_failure), and sessions keep objects across commits.
    failure = session.get(LoginFailure, (user.id, attempt.ip), populate_existing=True)
    if failure is not None and failure.locked_until is not None and failure.locked_until > now:
        _spend_hashing_time(attempt.password)
        audit.record(
            session, "login.locked", user_id=user.id, territory_id=user.territory_id, ip=attempt.ip
        )
        raise LoginRefused()
    try:
        _hasher.verify(user.password_hash, attempt.password)
    except (VerificationError, InvalidHashError):
        locked = _count_failure(session, user, attempt.ip, now)
        audit.record(
            session,
            "login.failed",
            user_id=user.id,
            territory_id=user.territory_id,
            ip=attempt.ip,
            reason="password",
            locked=locked,
        )
        raise LoginRefused() from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(attempt.password)
    if failure is not None:
        session.delete(failure)
    user.last_login_at = now
    audit.record(
        session, "login.success", user_id=user.id, territory_id=user.territory_id, ip=attempt.ip
    )
    return user


def _count_failure(session: Session, user: User, ip: str, now: datetime) -> bool:
    """Count a wrong password from `ip`; return whether the account is now locked for that
    address.

    Failures are counted within LOCKOUT of the first one counted; older ones are forgotten,
    here and for the account's other addresses."""
    window_start = now - LOCKOUT
    session.execute(
        delete(LoginFailure).where(
            LoginFailure.user_id == user.id,
            LoginFailure.ip != ip,
            LoginFailure.first_failed_at <= window_start,
            or_(LoginFailure.locked_until.is_(None), LoginFailure.locked_until <= now),
        )
    )
    locked_until = session.execute(_failure_upsert(session, user.id, ip, now)).scalar_one()
    return locked_until is not None


# INSERT ... ON CONFLICT DO UPDATE, as each supported database spells it.
_UPSERTS: dict[str, Callable[[type[LoginFailure]], postgresql.Insert | sqlite.Insert]] = {
    "postgresql": postgresql.insert,
    "sqlite": sqlite.insert,
}


def _failure_upsert(
    session: Session, user_id: int, ip: str, now: datetime
) -> ReturningInsert[tuple[datetime | None]]:
    """One statement that adds the address's row or counts one more failure in it.

    A read then an INSERT let two first failures at once (a double click, a script) both
    insert, the second failing on the primary key: a 500 instead of the refusal. Counting in
    the database also loses no failure to two requests writing the same number. In the
    UPDATE, the columns read are the row's values before it."""
    when = LoginFailure.first_failed_at.type  # UTC timestamps, as the columns store them
    still_locked = and_(LoginFailure.locked_until.is_not(None), LoginFailure.locked_until > now)
    # The window is over, or the lockout it led to: start counting again (not while another
    # request's failure has just locked the address).
    restart = and_(
        ~still_locked,
        or_(LoginFailure.first_failed_at <= now - LOCKOUT, LoginFailure.locked_until.is_not(None)),
    )
    counted = case((restart, 1), else_=LoginFailure.failures + 1)
    insert = _UPSERTS[session.get_bind().dialect.name](LoginFailure)
    return (
        insert.values(
            user_id=user_id,
            ip=ip,
            failures=1,
            first_failed_at=now,
            locked_until=now + LOCKOUT if MAX_FAILED_LOGINS <= 1 else None,
        )
        .on_conflict_do_update(
            index_elements=[LoginFailure.user_id, LoginFailure.ip],
            set_={
                "failures": counted,
                "first_failed_at": case(
                    (restart, literal(now, when)), else_=LoginFailure.first_failed_at
                ),
                "locked_until": case(
                    (still_locked, LoginFailure.locked_until),
                    (counted >= MAX_FAILED_LOGINS, literal(now + LOCKOUT, when)),
                    else_=null(),
                ),
            },
        )
        .returning(LoginFailure.locked_until)
    )
