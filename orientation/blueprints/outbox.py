"""Workspace pages for messages: the outbox viewer (coordinators) and the CPTS's message
templates (CPTS admins)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import TextAreaField
from wtforms.validators import InputRequired

from models import Channel, MessageStatus, Role, utcnow
from notifications.templates import MessageTemplateError
from orientation.auth import staff_required
from orientation.blueprints.auth import Typed, keep_through_login
from orientation.labels import MESSAGE_STATUS_LABELS
from orientation.services import message_templates as templates_service
from orientation.services.message_templates import Preview, UnknownTemplate
from orientation.services.outbox_view import (
    KeptBack,
    MessageNotFound,
    NotRetryable,
    list_messages,
    retry_message,
)
from orientation.services.workflow import ProcessingLimited

bp = Blueprint("outbox", __name__, url_prefix="/espace")

CHANNEL_LABELS = {Channel.SMS: _l("SMS"), Channel.EMAIL: _l("E-mail")}


class TemplateForm(FlaskForm):
    body = TextAreaField(_l("Texte du message"), validators=[InputRequired()])


class RetryForm(FlaskForm):
    """Only the CSRF token."""


@bp.get("/messages")
@staff_required(Role.COORDINATOR, Role.CPTS_ADMIN)
def messages() -> ResponseReturnValue:
    raw_status = request.args.get("statut", "")
    status = MessageStatus(raw_status) if raw_status in set(MessageStatus) else None
    page = list_messages(
        g.session,
        territory_id=g.territory.id,
        user_id=g.user.id,
        status=status,
        page=request.args.get("page", 1, type=int) or 1,
    )
    g.session.commit()  # the audit entry of this read
    return render_template(
        "workspace/messages.html",
        outbox=page,
        status=status,
        status_labels=MESSAGE_STATUS_LABELS,
        channel_labels=CHANNEL_LABELS,
        retry_form=RetryForm(),
    )


@bp.post("/messages/<int:message_id>/renvoyer")
@staff_required(Role.COORDINATOR, Role.CPTS_ADMIN)
def retry(message_id: int) -> ResponseReturnValue:
    if not RetryForm().validate_on_submit():
        abort(400)
    try:
        retry_message(
            g.session, message_id, territory_id=g.territory.id, user_id=g.user.id, now=utcnow()
        )
    except MessageNotFound:
        g.session.commit()  # the audit entry of the guess
        abort(404)
    except NotRetryable:
        flash(_l("Ce message n'est pas en échec : il n'a pas été renvoyé."), "error")
    except ProcessingLimited as exc:
        flash(str(exc), "error")
    except KeptBack as exc:
        flash(str(exc), "error")
    else:
        g.session.commit()
        flash(_l("Le message sera renvoyé dans quelques instants."), "success")
    return redirect(url_for("outbox.messages", statut=request.args.get("statut", "")))


@bp.get("/modeles")
@staff_required(Role.CPTS_ADMIN)
def message_templates() -> ResponseReturnValue:
    entries = templates_service.list_templates(g.session, g.territory.id)
    return render_template(
        "workspace/message_templates.html",
        entries=entries,
        channel_labels=CHANNEL_LABELS,
    )


def _chosen(key: str, channel: str) -> tuple[Channel, str]:
    """The channel and the CPTS's current text of a template, or a 404."""
    if channel not in set(Channel):
        abort(404)
    chosen = Channel(channel)
    try:
        return chosen, templates_service.current_text(g.session, g.territory.id, key, chosen)
    except UnknownTemplate:
        abort(404)


def _template_page(key: str, chosen: Channel, form: TemplateForm, preview: Preview | None,
                   notice: str = "") -> str:  # fmt: skip
    return render_template(
        "workspace/message_template_edit.html",
        form=form,
        key=key,
        channel=chosen,
        channel_labels=CHANNEL_LABELS,
        preview=preview,
        variables=sorted(templates_service.sample_context(key, chosen)),
        notice=notice,
    )


@bp.route("/modeles/<key>/<channel>", methods=["GET", "POST"])
@staff_required(Role.CPTS_ADMIN)
def edit_template(key: str, channel: str) -> ResponseReturnValue:
    chosen, current = _chosen(key, channel)
    form = TemplateForm(data={"body": current} if request.method == "GET" else None)
    preview: Preview | None = None
    action = request.form.get("action", "preview")
    if request.method == "POST" and action == "reset":
        templates_service.reset_template(g.session, g.territory.id, key, chosen, user_id=g.user.id)
        g.session.commit()
        flash(_l("Le texte d'origine est rétabli."), "success")
        return redirect(url_for("outbox.edit_template", key=key, channel=channel))
    if form.validate_on_submit():
        try:
            if action == "save":
                preview = templates_service.save_template(
                    g.session,
                    g.territory.id,
                    key,
                    chosen,
                    form.body.data or "",
                    user_id=g.user.id,
                    now=utcnow(),
                )
                g.session.commit()
                flash(_l("Modèle enregistré."), "success")
                return redirect(url_for("outbox.edit_template", key=key, channel=channel))
            preview = templates_service.preview(key, chosen, form.body.data or "")
        except MessageTemplateError as exc:
            form.body.errors = [f"Ce texte ne peut pas être utilisé : {exc}."]
    elif request.method == "GET":
        try:
            preview = templates_service.preview(key, chosen, current)
        except MessageTemplateError:
            preview = None
    return _template_page(key, chosen, form, preview)


@staff_required(Role.CPTS_ADMIN)
def _template_again(notice: str, values: Typed, key: str, channel: str) -> str:
    chosen, _current = _chosen(key, channel)
    form = TemplateForm(formdata=values)
    return _template_page(key, chosen, form, None, notice)


# A long text written past the end of the session is not lost (see keep_through_login).
keep_through_login(bp, {"outbox.edit_template": _template_again})
