"""SurveyAnswer: one answer to the year-end satisfaction survey, kept apart from identities."""

from __future__ import annotations

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TerritoryOwned


class SurveyAnswer(TerritoryOwned, Base):
    """An anonymous answer: no request id, no timestamp finer than the survey's period.

    RGPD minimisation: the answer cannot be joined back to a patient. That a request was
    surveyed and answered is recorded on the request itself (Request.survey_answered_at).
    """

    __tablename__ = "survey_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[int] = mapped_column(Integer, index=True)  # the year surveyed, e.g. 2026
    found_gp: Mapped[bool] = mapped_column(Boolean)
    satisfaction: Mapped[int] = mapped_column(Integer)  # 1 (not at all) to 5 (very)
    comment: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(10), default="link")
