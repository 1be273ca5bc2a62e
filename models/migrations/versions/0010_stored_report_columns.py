"""What the indicators count, stored on each request; survey answers that cannot be lined up.

Requests get their household (persons, 70 and over, under 6, ALD) and their workflow (eligible
or out of territory ever reached, first proposal, orientation) as columns, backfilled here
from the persons and status events exactly as the indicators counted them until now, so that
the indicators read one covering index instead of grouping persons and events. The two indexes
that served that grouping go.

Survey answers get a random key instead of a sequential id (and no rowid on SQLite), and the
request keeps only that it answered, not when: ordering one side against the other no longer
pairs them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 18:00:00
"""

import random
import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_REPORT_COLUMNS = [
    "territory_id", "created_at", "status", "source", "css_ame", "need_home_visits",
    "referrer_id", "oriented_doctor_id",
]  # fmt: skip
# models.request.FIGURE_COLUMNS and REPORT_COLUMNS at this revision (migrations do not import
# the models).
FIGURE_COLUMNS = [
    "territory_id", "status", "source", "has_elderly", "has_child", "has_ald", "css_ame",
    "need_home_visits", "reached_eligible", "reached_out_of_territory", "created_at",
    "persons_count", "oriented_doctor_id",
]  # fmt: skip
REPORT_COLUMNS = ["territory_id", "created_at", "first_proposed_at", "oriented_at", "referrer_id"]
FLAGS = ["has_elderly", "has_child", "has_ald", "reached_eligible", "reached_out_of_territory"]


def _years_before_request(dialect: str, years: int) -> str:
    """SQL for the calendar day `years` before the request's creation (UTC)."""
    if dialect == "sqlite":
        return f"date(requests.created_at, '-{years} years')"
    return f"CAST(timezone('UTC', requests.created_at) - interval '{years} years' AS date)"


def _backfill(dialect: str) -> None:
    persons = "SELECT {what} FROM persons WHERE persons.request_id = requests.id"
    events = "SELECT {what} FROM request_events e WHERE e.request_id = requests.id"
    # The same definitions as the grouped queries of the indicators before this revision.
    op.execute(
        f"""
        UPDATE requests SET
            persons_count = ({persons.format(what="count(*)")}),
            has_elderly = EXISTS ({persons.format(what="1")}
                AND persons.birth_date <= {_years_before_request(dialect, 70)}),
            has_child = EXISTS ({persons.format(what="1")}
                AND persons.birth_date > {_years_before_request(dialect, 6)}),
            has_ald = EXISTS ({persons.format(what="1")} AND persons.ald),
            reached_eligible = EXISTS ({events.format(what="1")} AND e.to_status = 'eligible'),
            reached_out_of_territory = EXISTS (
                {events.format(what="1")} AND e.to_status = 'out_of_territory'),
            first_proposed_at = ({events.format(what="min(e.at)")}
                AND e.kind = 'status' AND e.to_status = 'proposed'),
            oriented_at = ({events.format(what="min(e.at)")}
                AND e.kind = 'status' AND e.to_status = 'oriented')
        """  # noqa: S608 - fixed SQL, no user input
    )


def _survey_table(with_key: bool) -> None:
    first = (
        sa.Column("key", sa.String(length=32), nullable=False)
        if with_key
        else sa.Column("id", sa.Integer(), nullable=False)
    )
    op.create_table(
        "survey_answers",
        first,
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("found_gp", sa.Boolean(), nullable=False),
        sa.Column("satisfaction", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("territory_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["territory_id"],
            ["territories.id"],
            name=op.f("fk_survey_answers_territory_id_territories"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("key" if with_key else "id", name=op.f("pk_survey_answers")),
        **({"sqlite_with_rowid": False} if with_key else {}),
    )
    op.create_index(op.f("ix_survey_answers_period"), "survey_answers", ["period"])
    op.create_index(op.f("ix_survey_answers_territory_id"), "survey_answers", ["territory_id"])


def _rebuild_survey_answers(with_key: bool) -> None:
    """Recreate the table with the other kind of key; the rows go back in a random order."""
    columns = "period, found_gp, satisfaction, comment, channel, territory_id"
    rows = [dict(row._mapping) for row in op.get_bind().execute(
        sa.text(f"SELECT {columns} FROM survey_answers")  # noqa: S608 - fixed SQL
    )]  # fmt: skip
    op.drop_table("survey_answers")
    _survey_table(with_key)
    random.SystemRandom().shuffle(rows)
    if rows:
        table = sa.table(
            "survey_answers",
            *(sa.column(name) for name in ["key", *columns.split(", ")]),
        )
        op.bulk_insert(
            table,
            [{**row, "key": secrets.token_hex(16)} for row in rows] if with_key else rows,
        )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_requests_reports", table_name="requests")
    op.add_column(
        "requests", sa.Column("persons_count", sa.Integer(), nullable=False, server_default="0")
    )
    for name in FLAGS:
        op.add_column(
            "requests", sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.add_column("requests", sa.Column("first_proposed_at", sa.DateTime(timezone=True)))
    op.add_column("requests", sa.Column("oriented_at", sa.DateTime(timezone=True)))
    op.add_column(
        "requests",
        sa.Column("survey_answered", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    _backfill(dialect)
    op.execute("UPDATE requests SET survey_answered = survey_answered_at IS NOT NULL")
    # Plain ALTER TABLE (SQLite 3.35+): a batch copy would drop the table, and with foreign
    # keys on, dropping requests deletes their persons and events by cascade.
    op.execute("ALTER TABLE requests DROP COLUMN survey_answered_at")
    op.create_index("ix_requests_figures", "requests", FIGURE_COLUMNS)
    op.create_index("ix_requests_reports", "requests", REPORT_COLUMNS)
    op.drop_index("ix_persons_criteria", table_name="persons")
    op.drop_index("ix_request_events_reached", table_name="request_events")
    _rebuild_survey_answers(with_key=True)


def downgrade() -> None:
    _rebuild_survey_answers(with_key=False)
    op.create_index(
        "ix_request_events_reached", "request_events", ["request_id", "to_status", "kind", "at"]
    )
    op.create_index("ix_persons_criteria", "persons", ["request_id", "birth_date", "ald"])
    op.drop_index("ix_requests_reports", table_name="requests")
    op.drop_index("ix_requests_figures", table_name="requests")
    op.add_column("requests", sa.Column("survey_answered_at", sa.DateTime(timezone=True)))
    # The answering time was never kept: the sending time is the nearest known.
    op.execute("UPDATE requests SET survey_answered_at = survey_sent_at WHERE survey_answered")
    for name in ["survey_answered", "oriented_at", "first_proposed_at", *FLAGS, "persons_count"]:
        op.execute(f"ALTER TABLE requests DROP COLUMN {name}")
    op.create_index("ix_requests_reports", "requests", OLD_REPORT_COLUMNS)
