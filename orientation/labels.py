"""French labels for the workflow's values, shown in pages, exports and messages."""

from __future__ import annotations

from flask import Flask
from flask_babel import lazy_gettext as _l

from models import MessageStatus, Reason, Source, Status
from orientation.services.contact import display_phone

STATUS_LABELS = {
    Status.RECEIVED: _l("Reçue"),
    Status.ELIGIBLE: _l("Éligible"),
    Status.OUT_OF_TERRITORY: _l("Hors territoire"),
    Status.IN_PROGRESS: _l("En cours"),
    Status.DOCTORS_CONTACTED: _l("Médecins sollicités"),
    Status.PROPOSED: _l("Proposition envoyée"),
    Status.ORIENTED: _l("Orientée"),
    Status.CLOSED: _l("Clôturée"),
    Status.WITHDRAWN: _l("Retirée"),
}

SOURCE_LABELS = {
    Source.QUESTIONNAIRE: _l("Questionnaire"),
    Source.PHONE: _l("Téléphone"),
    Source.PROFESSIONAL: _l("Professionnel"),
    Source.API: _l("Logiciel partenaire"),
}

REASON_LABELS = {
    Reason.GP_LEFT: _l("Médecin parti ou à la retraite"),
    Reason.MOVED: _l("Vient d'emménager"),
    Reason.CANNOT_CONTINUE: _l("Ne peut plus continuer avec son médecin"),
    Reason.OTHER: _l("Autre raison"),
}


CHANNEL_LABELS = {"sms": _l("SMS"), "email": _l("E-mail"), "phone": _l("Téléphone")}

# The outbox's states and the messages' purposes (Message.status, .purpose; a template's key is
# its purpose, but for "followup"), in the outbox, the template editor and a request's timeline.
MESSAGE_STATUS_LABELS = {
    MessageStatus.QUEUED: _l("En attente d'envoi"),
    MessageStatus.SENDING: _l("En cours d'envoi"),
    MessageStatus.SENT: _l("Envoyé"),
    MessageStatus.DELIVERED: _l("Distribué"),
    MessageStatus.FAILED: _l("Échec"),
}
MESSAGE_PURPOSE_LABELS = {
    "acknowledgement": _l("accusé de réception"),
    "proposal": _l("proposition au patient"),
    "doctor_request": _l("sollicitation du médecin"),
    "doctor_reminder": _l("relance du médecin"),
    "doctor_invitation": _l("invitation du médecin"),
    "follow_up": _l("suivi"),
    "followup": _l("suivi"),
    "survey": _l("enquête de satisfaction"),
    "link_renewed": _l("nouveau lien privé du patient"),
}


def init_app(app: Flask) -> None:
    app.jinja_env.filters["phone"] = display_phone
    app.jinja_env.globals.update(
        channel_label=lambda c: CHANNEL_LABELS.get(c, c),
        status_label=lambda s: STATUS_LABELS[Status(s)],
        message_status_label=lambda s: MESSAGE_STATUS_LABELS[MessageStatus(s)],
        purpose_label=lambda p: MESSAGE_PURPOSE_LABELS.get(p, p),
        source_label=lambda s: SOURCE_LABELS[Source(s)],
        reason_label=lambda s: REASON_LABELS[Reason(s)],
    )
