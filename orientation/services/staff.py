"""Staff management: who may create, deactivate and reset whom, and the CPTS settings.

The instance admin (Role.ADMIN, no territory) manages the CPTS and their admins; a CPTS admin
manages the coordinators and referrers of their own CPTS. Users are not TerritoryOwned (an
instance admin has no territory), so every function here filters on the territory itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from geo.communes import Gazetteer
from models import Role, Territory, User
from orientation.services import accounts, audit
from orientation.services.territories import TerritoryInput, add_territory, parse_insee_codes


class NotAllowed(Exception):
    """The actor's role does not allow this action."""


class NotFound(Exception):
    """No such account or CPTS within the actor's reach (shown as a 404)."""


class EmailTaken(ValueError):
    """Another account already uses this e-mail address."""


# Which roles each kind of admin may create and manage.
MANAGEABLE: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset({Role.CPTS_ADMIN}),
    Role.CPTS_ADMIN: frozenset({Role.COORDINATOR, Role.REFERRER}),
}


def _check_admin(actor: User) -> None:
    if actor.role not in MANAGEABLE or (actor.role is Role.CPTS_ADMIN and not actor.territory_id):
        raise NotAllowed()


def territory_in_reach(session: Session, actor: User, territory_id: int) -> Territory:
    """The CPTS this admin may manage, or NotFound (a CPTS admin reaches only their own)."""
    _check_admin(actor)
    if actor.role is Role.CPTS_ADMIN and actor.territory_id != territory_id:
        raise NotFound()
    territory = session.get(Territory, territory_id)
    if territory is None:
        raise NotFound()
    return territory


def staff_in_reach(session: Session, actor: User) -> Sequence[User]:
    """The accounts this admin manages, by CPTS then name."""
    _check_admin(actor)
    query = select(User).where(User.role.in_(MANAGEABLE[actor.role]))
    if actor.role is Role.CPTS_ADMIN:
        query = query.where(User.territory_id == actor.territory_id)
    return session.scalars(query.order_by(User.territory_id, User.full_name)).all()


def user_in_reach(session: Session, actor: User, user_id: int) -> User:
    """An account this admin manages, or NotFound (never reveal that it exists elsewhere)."""
    _check_admin(actor)
    user = session.get(User, user_id)
    if user is None or user.role not in MANAGEABLE[actor.role] or user.id == actor.id:
        raise NotFound()
    if actor.role is Role.CPTS_ADMIN and user.territory_id != actor.territory_id:
        raise NotFound()
    return user


@dataclass(frozen=True)
class NewStaff:
    email: str
    full_name: str
    role: Role
    password: str
    territory_id: int
    profession: str = ""


def create_staff(session: Session, actor: User, new: NewStaff, ip: str = "") -> User:
    """Create an account of a role this admin manages; raise NotAllowed, EmailTaken,
    accounts.PasswordTooWeak."""
    territory = territory_in_reach(session, actor, new.territory_id)
    if new.role not in MANAGEABLE[actor.role]:
        raise NotAllowed()
    email = new.email.strip().lower()
    if session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        raise EmailTaken(email)
    user = accounts.create_user(
        session,
        email=email,
        full_name=new.full_name,
        role=new.role,
        password=new.password,
        territory_id=territory.id,
        profession=new.profession,
    )
    session.flush()
    audit.record(
        session,
        "staff.create",
        territory_id=territory.id,
        user_id=actor.id,
        object_type="user",
        object_id=user.id,
        ip=ip,
        role=new.role.value,
    )
    return user


def set_active(session: Session, actor: User, user: User, active: bool, ip: str = "") -> None:
    """Deactivate (the account can no longer log in, its sessions end) or reactivate an
    account (its sessions of before stay ended)."""
    user_in_reach(session, actor, user.id)
    user.active = active
    if not active:
        accounts.end_sessions(user)
    audit.record(
        session,
        "staff.reactivate" if active else "staff.deactivate",
        territory_id=user.territory_id,
        user_id=actor.id,
        object_type="user",
        object_id=user.id,
        ip=ip,
    )


def reset_password(session: Session, actor: User, user: User, password: str, ip: str = "") -> None:
    """Set a new password (policy checked), end the user's sessions and lift their lockouts;
    the password is never logged."""
    user_in_reach(session, actor, user.id)
    accounts.set_password(user, password)
    accounts.lift_lockouts(session, user)
    audit.record(
        session,
        "staff.reset_password",
        territory_id=user.territory_id,
        user_id=actor.id,
        object_type="user",
        object_id=user.id,
        ip=ip,
    )


@dataclass(frozen=True)
class TerritorySettings:
    """What a CPTS admin edits: contacts, DPO, distances and periods, retention (months)."""

    contact_phone: str
    contact_email: str
    postal_address: str
    dpo_contact: str
    max_distance_km: int
    availability_refresh_months: int
    follow_up_days: int  # the patient's follow-up message this many days after a proposal
    retention_closed_months: int
    retention_out_of_territory_months: int
    retention_message_body_months: int


def update_settings(
    session: Session, actor: User, territory: Territory, values: TerritorySettings, ip: str = ""
) -> list[str]:
    """Apply the settings; return the names of the fields that changed (audited)."""
    territory_in_reach(session, actor, territory.id)
    changed = []
    for name, value in vars(values).items():
        if getattr(territory, name) != value:
            setattr(territory, name, value)
            changed.append(name)
    if changed:
        audit.record(
            session,
            "territory.settings",
            territory_id=territory.id,
            user_id=actor.id,
            object_type="territory",
            object_id=territory.id,
            ip=ip,
            fields=changed,
        )
    return changed


def settings_of(territory: Territory) -> TerritorySettings:
    return TerritorySettings(**{name: getattr(territory, name) for name in _SETTING_NAMES})


_SETTING_NAMES = list(TerritorySettings.__dataclass_fields__)


def create_territory(
    session: Session, actor: User, gazetteer: Gazetteer, name: str, communes: str, ip: str = ""
) -> Territory:
    """A new CPTS (instance admin only); raise territories.UnknownCommunes or TerritoryError."""
    if actor.role is not Role.ADMIN:
        raise NotAllowed()
    territory = add_territory(
        session, gazetteer, TerritoryInput(name=name, insee_codes=parse_insee_codes(communes))
    )
    audit.record(
        session,
        "territory.create",
        territory_id=territory.id,
        user_id=actor.id,
        object_type="territory",
        object_id=territory.id,
        ip=ip,
    )
    return territory


def create_instance_admin(session: Session, email: str, full_name: str, password: str) -> User:
    """The instance's administrator, from the command line: the first account of a new
    instance (nobody is there yet to create it from /admin). Raise EmailTaken, or
    PasswordTooWeak in French."""
    if session.scalar(select(User.id).where(User.email == email.strip().lower())) is not None:
        raise EmailTaken(email)
    user = accounts.create_user(
        session, email=email, full_name=full_name, role=Role.ADMIN, password=password,
        territory_id=None,
    )  # fmt: skip
    session.flush()
    audit.record(
        session, "staff.create", actor_label="cli", object_type="user", object_id=user.id,
        role=Role.ADMIN.value,
    )  # fmt: skip
    return user
