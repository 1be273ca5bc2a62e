"""SQLAlchemy 2 models, one module per entity, and the engine/session set-up."""

from models.audit import AuditEntry
from models.base import Base, TerritoryOwned, utcnow
from models.commune import Commune
from models.contact import ContactStatus, DoctorContact
from models.doctor import (
    Accepting,
    Doctor,
    DoctorEvent,
    DoctorReminder,
    DoctorSite,
    LocationPrecision,
    VolunteerStatus,
)
from models.message import Channel, Message, MessageStatus
from models.message_template import MessageTemplate
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
    "ContactStatus",
    "Doctor",
    "DoctorContact",
    "DoctorEvent",
    "DoctorReminder",
    "DoctorSite",
    "LocationPrecision",
    "Message",
    "MessageStatus",
    "MessageTemplate",
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
