"""The tiny interface every provider implements: send a message, read a delivery status.

A provider receives an `OutgoingMessage` (a plain snapshot, never an ORM object: providers
do not touch the database) and either returns a `ProviderResult` or raises one of the two
failures below, so the dispatcher knows whether to try again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from models import Channel, MessageStatus


@dataclass(frozen=True)
class OutgoingMessage:
    id: int
    channel: Channel
    recipient: str
    subject: str
    body: str
    idempotency_key: str
    created_at: datetime


@dataclass(frozen=True)
class ProviderResult:
    """The provider accepted the message under `provider_id`; status is SENT or DELIVERED."""

    provider_id: str
    status: MessageStatus = MessageStatus.SENT


class ProviderError(Exception):
    """Sending failed; the message says why, in words a coordinator can act on."""


class TemporaryFailure(ProviderError):
    """Timeout, 5xx, connection refused: the same message may go through later.

    `uncertain` means the request may have reached the provider (no answer in time): before
    sending again, the dispatcher asks the provider whether it took the message.
    """

    def __init__(self, reason: str, *, uncertain: bool = False) -> None:
        super().__init__(reason)
        self.uncertain = uncertain


class PermanentFailure(ProviderError):
    """The provider refused this message for good (invalid number, rejected address)."""


class Provider(Protocol):
    name: str

    def send(self, message: OutgoingMessage) -> ProviderResult:
        """Hand the message to the provider, passing its idempotency key when it takes one."""
        ...

    def status(self, provider_id: str) -> MessageStatus | None:
        """The provider's current delivery status of a message, if it can tell."""
        ...

    def find_accepted(self, message: OutgoingMessage, since: datetime) -> str | None:
        """After a crash: the provider id of this message if the provider already took it.

        Returns None when the provider has no trace of it, and raises TemporaryFailure when it
        cannot be asked right now (the message then waits rather than risk a second copy).
        """
        ...
