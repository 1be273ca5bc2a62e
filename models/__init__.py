"""SQLAlchemy 2 models, one module per entity, and the engine/session set-up."""

from models.audit import AuditEntry
from models.base import Base, TerritoryOwned, utcnow
from models.commune import Commune
from models.doctor import Accepting, Doctor, LocationPrecision, VolunteerStatus
from models.message import Channel, Message, MessageStatus
from models.request import (
    OPEN_STATUSES,
    Person,
    Reason,
    Request,
    RequestEvent,
    Source,
    Status,
)
from models.survey import SurveyAnswer
from models.territory import Territory, TerritoryCommune
from models.user import Role, User

__all__ = [
    "OPEN_STATUSES",
    "Accepting",
    "AuditEntry",
    "Base",
    "Channel",
    "Commune",
    "Doctor",
    "LocationPrecision",
    "Message",
    "MessageStatus",
    "Person",
    "Reason",
    "Request",
    "RequestEvent",
    "Role",
    "Source",
    "Status",
    "SurveyAnswer",
    "Territory",
    "TerritoryCommune",
    "TerritoryOwned",
    "User",
    "VolunteerStatus",
    "utcnow",
]
