"""Providers, registered by name in an explicit dict (no plugin machinery)."""

from __future__ import annotations

from models import Channel
from notifications.providers.base import (
    OutgoingMessage,
    PermanentFailure,
    Provider,
    ProviderError,
    ProviderResult,
    TemporaryFailure,
)
from notifications.providers.local import LocalOutbox
from notifications.providers.smtp_email import SmtpEmail
from notifications.providers.twilio_sms import TwilioSms
from orientation.config import Settings

PROVIDERS: dict[str, type[LocalOutbox] | type[TwilioSms] | type[SmtpEmail]] = {
    LocalOutbox.name: LocalOutbox,
    TwilioSms.name: TwilioSms,
    SmtpEmail.name: SmtpEmail,
}

__all__ = [
    "PROVIDERS",
    "LocalOutbox",
    "OutgoingMessage",
    "PermanentFailure",
    "Provider",
    "ProviderError",
    "ProviderResult",
    "SmtpEmail",
    "TemporaryFailure",
    "TwilioSms",
    "build_providers",
]


def _build(name: str, settings: Settings) -> Provider:
    cls = PROVIDERS[name]
    if cls is TwilioSms:
        return TwilioSms(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            sender=settings.twilio_from,
            base_url=settings.base_url,
            api_base=settings.twilio_api_base,
            timeout=settings.provider_timeout_seconds,
        )
    if cls is SmtpEmail:
        return SmtpEmail(
            url=settings.smtp_url,
            sender=settings.mail_from,
            timeout=settings.provider_timeout_seconds,
        )
    return LocalOutbox()


def build_providers(settings: Settings) -> dict[Channel, Provider]:
    """The provider of each channel, as configured."""
    return {
        Channel.SMS: _build(settings.sms_provider, settings),
        Channel.EMAIL: _build(settings.email_provider, settings),
    }
