"""The submission's precompiled statements write what the ORM reads back, on both databases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from geo.geocoding import OfflineGeocoder
from models import (
    AuditEntry,
    Channel,
    Message,
    MessageStatus,
    Person,
    Reason,
    Request,
    RequestEvent,
    Source,
    Status,
    Territory,
    TerritoryCommune,
)
from models.precompiled import Precompiled
from orientation.links import LinkSigner
from orientation.services.intake import RecentTerritories, intake_territory, submit_request
from orientation.services.intake_validation import IntakeData, PersonData

SIGNER = LinkSigner("test-secret-" + "x" * 40)
# Microseconds and a date before 1970: the conversions SQLite's text columns need.
NOW = datetime(2027, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)


def _data(**changes: object) -> IntakeData:
    commune = gazetteer().by_insee["59017"]  # Armentières
    values: dict[str, object] = dict(
        persons=[PersonData("Jeanne", "Martin", date(1931, 2, 3), True),
                 PersonData("Léa", "Martin", date(2025, 1, 2), False)],
        phone="+33612345678", email="jeanne@example.fr", preferred_channel="sms",
        best_time="le matin", street="12 rue de la Gare", postal_code="59280", commune=commune,
        reason=Reason.MOVED, reason_detail="", already_sees_gp=True, need_home_visits=True,
        need_reduced_mobility=False, need_chronic_followup=True, language="néerlandais",
        css_ame=False, comment="<b>inerte</b>", agrees_to_survey=False, source_tag="pharmacie",
    )  # fmt: skip
    values.update(changes)
    return IntakeData(**values)  # type: ignore[arg-type]


def _submit(session: Session, territory: Territory, key: str = "") -> int:
    submitted = submit_request(
        session, intake_territory(session, territory.slug) or territory, _data(),
        source=Source.QUESTIONNAIRE, now=NOW, geocoder=OfflineGeocoder(), signer=SIGNER,
        base_url="http://localhost", submission_key=key, ip="192.0.2.7",
    )  # fmt: skip
    return submitted.request_id


def test_every_kind_of_value_reads_back_as_written(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = make_territory(communes=["59017", "59431"])
    request_id = _submit(session, territory)
    session.expire_all()

    request = session.get(Request, request_id)
    assert request is not None
    assert request.status is Status.ELIGIBLE and request.reason is Reason.MOVED  # enums
    assert request.created_at == NOW and request.consent_at == NOW  # microseconds kept
    assert request.need_home_visits is True and request.css_ame is False  # booleans
    assert request.has_elderly and request.has_child and request.has_ald  # derived flags
    assert request.comment == "<b>inerte</b>" and request.language == "néerlandais"
    persons = session.scalars(select(Person).where(Person.request_id == request_id)
                              .order_by(Person.position)).all()  # fmt: skip
    assert [(p.first_name, p.birth_date, p.ald) for p in persons] == [
        ("Jeanne", date(1931, 2, 3), True), ("Léa", date(2025, 1, 2), False),
    ]  # fmt: skip
    events = session.scalars(select(RequestEvent).where(RequestEvent.request_id == request_id)
                             .order_by(RequestEvent.id)).all()  # fmt: skip
    assert [(e.kind, e.to_status, e.at) for e in events] == [
        ("submitted", Status.RECEIVED.value, NOW), ("status", Status.ELIGIBLE.value, NOW),
    ]  # fmt: skip
    message = session.scalars(select(Message).where(Message.request_id == request_id)).one()
    assert message.channel is Channel.SMS and message.status is MessageStatus.QUEUED
    assert message.recipient == "+33612345678" and request.reference in message.body
    entry = session.scalars(select(AuditEntry).where(AuditEntry.object_id == str(request_id))).one()
    assert entry.action == "request.submitted" and entry.details == {"source": "questionnaire"}
    assert entry.ip == "192.0.2.7"


def test_a_repeated_key_keeps_one_request_and_the_session_goes_on(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = make_territory(communes=["59017"])
    first = _submit(session, territory, key="tap-1")
    again = _submit(session, territory, key="tap-1")  # the driver's unique violation, caught
    assert again == first
    assert session.scalar(select(func.count()).select_from(Request)) == 1
    assert session.scalar(select(func.count()).select_from(Message)) == 1
    assert _submit(session, territory, key="tap-2") != first  # the session still works


def test_the_territory_of_a_questionnaire_url_is_read_with_its_communes(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = make_territory(communes=["59017", "59431", "59143"])
    found = intake_territory(session, territory.slug)
    assert found is not None
    assert found.id == territory.id and found.insee_codes == {"59017", "59431", "59143"}
    assert intake_territory(session, "no-such-cpts") is None


def test_a_change_of_communes_reaches_submissions_within_a_second(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = make_territory(communes=["59017"])
    clock = [100.0]
    recent = RecentTerritories(seconds=1.0, clock=lambda: clock[0])
    first = recent.get(session, territory.slug)
    assert first is not None and first.insee_codes == {"59017"}
    session.add(TerritoryCommune(territory_id=territory.id, insee="59431"))  # an admin's edit
    session.commit()
    clock[0] += 0.5
    assert recent.get(session, territory.slug) is first  # read half a second ago: kept
    clock[0] += 0.5
    again = recent.get(session, territory.slug)
    assert again is not None and again.insee_codes == {"59017", "59431"}
    assert recent.get(session, "no-such-cpts") is None
    assert recent._kept.keys() == {territory.slug}  # an unknown slug is not kept


def test_a_parameter_left_out_is_an_error_not_a_null(session: Session) -> None:
    statement = Precompiled(select(Territory.id).where(Territory.slug == "x"))
    connection = session.connection()
    # A literal of the statement is carried over; nothing else is invented.
    assert statement.execute(connection, {}).fetchall() == []
    with pytest.raises(KeyError):
        Precompiled(select(Territory.id).where(Territory.slug == bindparam("slug"))).execute(
            connection, {}
        )
