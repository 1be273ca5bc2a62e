"""The year-end satisfaction survey (enquête de satisfaction), kept apart from identities.

`send_surveys` sends one signed link to each patient oriented during the year who agreed to
be contacted; never a reminder. The answer goes to SurveyAnswer, which knows the territory and
the year but not the request; the request only records that it was answered, so that a link
cannot be answered twice. Nothing written with the answer says when it came (no timestamp, no
sequential id, the request's updated_at left alone): answers cannot be lined up with requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Request, Status, SurveyAnswer, Territory
from notifications.outbox import queue_message
from orientation.links import LinkInvalid, LinkPurpose, LinkSigner
from orientation.services.message_templates import render_for_territory
from orientation.services.patient_links import AlreadyAnswered, patient_channel

COMMENT_MAX = 1000


@dataclass(frozen=True)
class SurveyInput:
    found_gp: bool
    satisfaction: int  # 1..5
    comment: str


def surveyed_requests(session: Session, year: int) -> list[Request]:
    """Oriented during the year, agreed to be contacted, never surveyed, not anonymised, and
    not limited (RGPD art. 18: a survey is a message to the patient, i.e. processing).

    A link already sent before a limitation can still be answered: the answer is stored
    apart from the request (see module docstring), so nothing is done with the request."""
    start, end = datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    return list(
        session.scalars(
            select(Request)
            .where(
                Request.status == Status.ORIENTED,
                Request.closed_at >= start,
                Request.closed_at < end,
                Request.agrees_to_survey.is_(True),
                Request.survey_sent_at.is_(None),
                Request.anonymised_at.is_(None),
                Request.processing_limited_at.is_(None),
            )
            .order_by(Request.id)
        )
    )


def send_surveys(
    session: Session, signer: LinkSigner, base_url: str, year: int, now: datetime
) -> int:
    """Queue the survey once per patient of the year; commits. Returns how many were queued."""
    territories = {t.id: t for t in session.scalars(select(Territory))}
    sent = 0
    for request in surveyed_requests(session, year):
        request.survey_sent_at = now  # once, even without a way to reach them: no reminder
        reach = patient_channel(request)
        if reach is None:
            continue
        channel, recipient = reach
        territory = territories[request.territory_id]
        token = signer.make(LinkPurpose.PATIENT_SURVEY, request.id, extra=str(year))
        message = render_for_territory(
            session,
            territory.id,
            "survey",
            channel,
            {
                "cpts": territory.name,
                "year": year,
                "link": f"{base_url.rstrip('/')}/enquete/{token}",
            },
        )
        queue_message(
            session, territory_id=territory.id, channel=channel, recipient=recipient,
            subject=message.subject, body=message.body, purpose="survey",
            idempotency_key=f"survey:{year}:{request.id}", request_id=request.id,
        )  # fmt: skip
        sent += 1
    session.commit()
    return sent


def open_survey(session: Session, signer: LinkSigner, token: str) -> tuple[Request, int]:
    """The request and year of a survey link; raise LinkInvalid, LinkExpired, AlreadyAnswered."""
    claims = signer.read(LinkPurpose.PATIENT_SURVEY, token)
    request = session.get(Request, claims.subject_id)
    if request is None or not claims.extra.isdigit() or request.survey_sent_at is None:
        raise LinkInvalid()
    if request.survey_answered:
        raise AlreadyAnswered()
    return request, int(claims.extra)


def answer_survey(session: Session, request: Request, year: int, answer: SurveyInput) -> None:
    """Store the answer apart from the request and mark the request answered, writing no
    time on either; commits. Raise AlreadyAnswered if the link was used meanwhile."""
    if not 1 <= answer.satisfaction <= 5:
        raise ValueError("satisfaction out of 1..5")
    # One UPDATE that only succeeds once (two tabs posting together cannot both answer), and
    # that sets updated_at to itself: its onupdate would otherwise stamp the answering time.
    marked: Any = session.execute(
        update(Request)
        .where(Request.id == request.id, Request.survey_answered.is_(False))
        .values(survey_answered=True, updated_at=Request.updated_at)
        .execution_options(synchronize_session=False)
    )
    if marked.rowcount != 1:
        session.rollback()
        raise AlreadyAnswered()
    session.add(
        SurveyAnswer(
            territory_id=request.territory_id,
            period=year,
            found_gp=answer.found_gp,
            satisfaction=answer.satisfaction,
            comment=answer.comment.strip()[:COMMENT_MAX],
        )
    )
    session.commit()
