"""Fewer indexes on the rows a questionnaire submission writes.

A submission inserts into five tables, and every index of theirs costs the insert a B-tree
descent and, on SQLite, one more page written to the WAL at commit: measured through gunicorn,
index upkeep was about a tenth of a submission's CPU. Three indexes served no query:

- requests.territory_id: every composite index of requests starts with territory_id;
- persons.territory_id and request_events.territory_id: both are read through their request
  (request_id has its own index); tenancy's territory_id filter is applied on top.

messages.doctor_id is kept for messages to doctors only: a patient's messages (every
acknowledgement) have none, and `doctor_id = ?` implies the index's condition on both
databases.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 03:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNUSED = (
    ("ix_requests_territory_id", "requests"),
    ("ix_persons_territory_id", "persons"),
    ("ix_request_events_territory_id", "request_events"),
)
TO_DOCTORS = "doctor_id IS NOT NULL"


def upgrade() -> None:
    for name, table in UNUSED:
        op.drop_index(name, table_name=table)
    op.drop_index("ix_messages_doctor_id", table_name="messages")
    op.create_index(
        "ix_messages_doctor_id", "messages", ["doctor_id"],
        postgresql_where=sa.text(TO_DOCTORS), sqlite_where=sa.text(TO_DOCTORS),
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_messages_doctor_id", table_name="messages")
    op.create_index("ix_messages_doctor_id", "messages", ["doctor_id"])
    for name, table in UNUSED:
        op.create_index(name, table, ["territory_id"])
