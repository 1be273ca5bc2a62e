"""The default "outbox" provider: nothing leaves the server; messages show in the workspace."""

from __future__ import annotations

from datetime import datetime

from models import MessageStatus
from notifications.providers.base import OutgoingMessage, ProviderResult


class LocalOutbox:
    """Marks messages delivered locally, for a CPTS that sends by hand or a demo."""

    name = "outbox"

    def send(self, message: OutgoingMessage) -> ProviderResult:
        return ProviderResult(provider_id=f"local-{message.id}", status=MessageStatus.DELIVERED)

    def status(self, provider_id: str) -> MessageStatus | None:
        return MessageStatus.DELIVERED

    def find_accepted(self, message: OutgoingMessage, since: datetime) -> str | None:
        # Nothing was handed to anyone: sending again is harmless.
        return None
