"""Every page says times on Paris's clocks: the request page, its timeline and the outbox agree
(a tester read 17:36 on one and 18:36 on the other for the same message)."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from models import Channel, Request, Role, Status, Territory, User
from notifications.outbox import queue_message
from orientation.services.workflow import change_status
from tests.conftest import AuthActions

LATE = datetime(2026, 12, 2, 23, 40, tzinfo=UTC)  # already 3 December, 00:40, in Paris


def test_the_request_page_its_timeline_and_the_outbox_say_the_same_paris_time(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_user: Callable[..., User],
) -> None:
    territory = make_territory()
    request = make_request(territory, Status.ELIGIBLE, created_at=LATE)
    change_status(request, Status.CLOSED, now=LATE, note="test")
    message = queue_message(
        session, territory_id=territory.id, channel=Channel.SMS, recipient="+33612345678",
        body="Bonjour", purpose="acknowledgement", idempotency_key="late", request_id=request.id,
    )  # fmt: skip
    message.created_at = LATE
    session.commit()
    auth.login(make_user(territory, Role.COORDINATOR))
    case = html.unescape(client.get(f"/espace/demandes/{request.id}").get_data(as_text=True))
    outbox = client.get("/espace/messages").get_data(as_text=True)
    assert "03/12/2026 00:40" in case and "02/12/2026 23:40" not in case
    assert "UTC" not in case
    assert "Demande clôturée le 03/12/2026" in case
    assert "03/12/2026 00:40" in outbox
