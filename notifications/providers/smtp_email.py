"""E-mail through an SMTP server with smtplib.

ORIENTATION_SMTP_URL: `smtps://user:pass@host:465` (TLS from the start) or
`smtp://user:pass@host:587` (STARTTLS, required); `smtp://host:25?tls=off` only for a relay on
the same machine or in tests. The Message-ID derives from the idempotency key, so a message
re-sent after a crash carries the same id and mail systems show it once.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

from models import MessageStatus
from notifications.providers.base import (
    OutgoingMessage,
    PermanentFailure,
    ProviderResult,
    TemporaryFailure,
)


class SmtpUrlError(ValueError):
    """ORIENTATION_SMTP_URL cannot be used; says why."""


def message_id(idempotency_key: str, sender: str) -> str:
    """A stable Message-ID for a logical message."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]
    domain = sender.rpartition("@")[2] or "localhost"
    return f"<{digest}@{domain}>"


class SmtpEmail:
    """Plain-text UTF-8 e-mail."""

    name = "smtp"

    def __init__(self, *, url: str, sender: str, timeout: float = 10) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise SmtpUrlError("use smtp://user:password@host:587 or smtps://...:465")
        self.ssl = parts.scheme == "smtps"
        self.starttls = not self.ssl and parse_qs(parts.query).get("tls") != ["off"]
        self.host = parts.hostname
        self.port = parts.port or (465 if self.ssl else 587)
        self.username = unquote(parts.username or "")
        self.password = unquote(parts.password or "")
        self.sender = sender
        self.timeout = timeout

    def _build(self, message: OutgoingMessage) -> EmailMessage:
        email = EmailMessage()
        email["From"] = self.sender
        email["To"] = message.recipient
        email["Subject"] = message.subject
        email["Date"] = formatdate(localtime=False)
        email["Message-ID"] = message_id(message.idempotency_key, self.sender)
        email.set_content(message.body, charset="utf-8")
        return email

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        if self.ssl:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        connection = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        if self.starttls:
            connection.starttls(context=context)
        return connection

    def send(self, message: OutgoingMessage) -> ProviderResult:
        email = self._build(message)
        try:
            with self._connect() as connection:
                if self.username:
                    connection.login(self.username, self.password)
                refused = connection.send_message(email)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()))
            raise _by_code(code, reason) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise TemporaryFailure(
                f"le serveur SMTP refuse nos identifiants ({exc.smtp_code})"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, exc.smtp_error) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TemporaryFailure(f"serveur SMTP injoignable : {type(exc).__name__}") from None
        if refused:
            code, reason = next(iter(refused.values()))
            raise _by_code(code, reason)
        return ProviderResult(provider_id=str(email["Message-ID"]), status=MessageStatus.SENT)

    def status(self, provider_id: str) -> MessageStatus | None:
        return None  # SMTP gives no delivery reports

    def find_accepted(self, message: OutgoingMessage, since: datetime) -> str | None:
        # SMTP cannot be asked. Sending again reuses the same Message-ID, which mail systems
        # use to show a duplicate once: the lesser evil next to a lost message.
        return None


def _by_code(code: int, reason: bytes | str) -> TemporaryFailure | PermanentFailure:
    text = reason.decode(errors="replace") if isinstance(reason, bytes) else reason
    if 500 <= code < 600:
        return PermanentFailure(f"adresse refusée par le serveur SMTP ({code} {text})")
    return TemporaryFailure(f"le serveur SMTP a répondu {code} {text}")
