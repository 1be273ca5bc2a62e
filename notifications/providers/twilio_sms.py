"""SMS through Twilio's official client; its API base is configurable so tests reach a local
server that speaks the Twilio Messages API (tests/fakes/twilio_server.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

from requests import RequestException
from requests.exceptions import ChunkedEncodingError, ReadTimeout
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from models import MessageStatus
from notifications.providers.base import (
    OutgoingMessage,
    PermanentFailure,
    ProviderResult,
    TemporaryFailure,
)

STATUS_WEBHOOK_PATH = "/webhooks/twilio/status"

# Twilio error codes that will not change on a retry (https://www.twilio.com/docs/api/errors).
PERMANENT_ERRORS = {
    21211: "numéro de destinataire invalide",
    21408: "envoi vers ce pays non autorisé sur le compte Twilio",
    21610: "le destinataire a refusé les SMS (STOP)",
    21612: "ce numéro ne peut pas recevoir de SMS de cet expéditeur",
    21614: "ce numéro n'est pas un mobile",
}

TWILIO_STATUSES = {
    "accepted": MessageStatus.SENT,
    "queued": MessageStatus.SENT,
    "sending": MessageStatus.SENT,
    "sent": MessageStatus.SENT,
    "delivered": MessageStatus.DELIVERED,
    "read": MessageStatus.DELIVERED,
    "undelivered": MessageStatus.FAILED,
    "failed": MessageStatus.FAILED,
}


def status_callback_url(base_url: str, idempotency_key: str) -> str:
    """Where Twilio reports delivery. The key lets the webhook find the message even when the
    report arrives before the dispatcher has recorded Twilio's SID."""
    return f"{base_url.rstrip('/')}{STATUS_WEBHOOK_PATH}?m={quote(idempotency_key, safe='')}"


class TwilioSms:
    """Twilio Programmable Messaging."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        sender: str,
        base_url: str,
        api_base: str = "",
        timeout: float = 10,
    ) -> None:
        self.sender = sender
        self.base_url = base_url
        self.client = Client(account_sid, auth_token, http_client=TwilioHttpClient(timeout=timeout))
        if api_base:
            self.client.api.base_url = api_base.rstrip("/")

    def send(self, message: OutgoingMessage) -> ProviderResult:
        try:
            created = self.client.messages.create(
                to=message.recipient,
                from_=self.sender,
                body=message.body,
                status_callback=status_callback_url(self.base_url, message.idempotency_key),
            )
        except TwilioRestException as exc:
            raise _failure(exc) from None
        except (ReadTimeout, ChunkedEncodingError) as exc:
            # The request left; Twilio may have created the message without us hearing back.
            raise TemporaryFailure(
                f"Twilio n'a pas répondu à temps : {type(exc).__name__}", uncertain=True
            ) from None
        except (RequestException, TwilioException) as exc:
            raise TemporaryFailure(f"Twilio injoignable : {type(exc).__name__}") from None
        return ProviderResult(provider_id=str(created.sid), status=MessageStatus.SENT)

    def status(self, provider_id: str) -> MessageStatus | None:
        try:
            fetched = self.client.messages(provider_id).fetch()
        except (TwilioException, RequestException):
            return None
        return TWILIO_STATUSES.get(str(fetched.status))

    def find_accepted(self, message: OutgoingMessage, since: datetime) -> str | None:
        # Twilio has no idempotency key on the Messages API, so after a crash we ask what it
        # sent to this number since the message was queued, and match on the exact body.
        try:
            candidates = self.client.messages.list(
                to=message.recipient,
                from_=self.sender,
                date_sent_after=since - timedelta(minutes=1),
                limit=200,
            )
        except TwilioRestException as exc:
            raise TemporaryFailure(f"Twilio n'a pas pu être interrogé : {exc.msg}") from None
        except (RequestException, TwilioException) as exc:
            raise TemporaryFailure(f"Twilio injoignable : {type(exc).__name__}") from None
        for candidate in candidates:
            # An earlier copy Twilio could not deliver (before a coordinator's retry) does not
            # count: sending again is what the retry is for.
            if candidate.body == message.body and candidate.status not in ("failed", "undelivered"):
                return str(candidate.sid)
        return None


def _failure(exc: TwilioRestException) -> TemporaryFailure | PermanentFailure:
    code = exc.code or 0
    if code in PERMANENT_ERRORS:
        return PermanentFailure(f"Twilio {code} : {PERMANENT_ERRORS[code]}")
    if exc.status >= 500 or exc.status == 429:
        return TemporaryFailure(f"Twilio a répondu {exc.status} : {exc.msg or 'erreur serveur'}")
    if exc.status in (401, 403):
        # A configuration problem the operator can fix; the message waits for it.
        return TemporaryFailure(f"Twilio refuse nos identifiants ({exc.status})")
    return PermanentFailure(f"Twilio a refusé le message ({exc.status} {code}) : {exc.msg}")
