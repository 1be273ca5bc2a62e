"""What follow-up and survey share: the channel to reach a patient and the link's URL."""

from __future__ import annotations

from models import Channel, Request


class AlreadyAnswered(Exception):
    """This link was answered already: a patient answers once."""


def patient_channel(request: Request) -> tuple[Channel, str] | None:
    """The patient's preferred channel when it is reachable, else the other one, else None."""
    options = {Channel.SMS: request.phone, Channel.EMAIL: request.email}
    preferred = Channel.EMAIL if request.preferred_channel == "email" else Channel.SMS
    for channel in (preferred, *(c for c in options if c is not preferred)):
        if options[channel]:
            return channel, options[channel]
    return None
