"""SurveyAnswer: one answer to the year-end satisfaction survey, kept apart from identities."""

from __future__ import annotations

import secrets

from sqlalchemy import Boolean, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, TerritoryOwned


def new_answer_key() -> str:
    return secrets.token_hex(16)


class SurveyAnswer(TerritoryOwned, Base):
    """An anonymous answer: no request id, no timestamp, no order of arrival.

    RGPD minimisation: the answer cannot be joined back to a patient. Its key is random, so
    sorting answers by key says nothing of when they came; on SQLite the table has no rowid
    (rows are stored in key order). The request only records that it answered
    (Request.survey_answered), without a time that could be lined up with the answers.
    """

    __tablename__ = "survey_answers"
    __table_args__ = {"sqlite_with_rowid": False}

    key: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_answer_key)
    period: Mapped[int] = mapped_column(Integer, index=True)  # the year surveyed, e.g. 2026
    found_gp: Mapped[bool] = mapped_column(Boolean)
    satisfaction: Mapped[int] = mapped_column(Integer)  # 1 (not at all) to 5 (very)
    comment: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(10), default="link")
