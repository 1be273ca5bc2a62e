"""A forwarded request points at its copy at the other CPTS, instead of naming it in a note.

The old link of a request forwarded to the CPTS that covers its commune says where it went and
the reference that now counts. That copy was found by reading the reference back out of the
French note of the closing event: a change of wording broke it, and a closing reason typed to
look like that note pointed the person's link at any request whose reference it named. Now
`requests.forwarded_to_id` holds the copy's id (ON DELETE SET NULL), set by the forwarding.

Requests forwarded before this revision are linked here, once, from their closing note: the
copy named there is linked only if its submission key shows that the forwarding of this very
request made it (services.intake.forward_request's key), so a note typed by hand links nothing.
Anonymised requests have no note left, and get no link (services.rights_erasure clears it).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 09:00:00
"""

import hashlib
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = "fk_requests_forwarded_to_id_requests"
INDEX = "ix_requests_forwarded_to_id"
FORWARDED_SQL = "forwarded_to_id IS NOT NULL"
# The note services.patient_link.close_as_forwarded wrote until this revision, ending with the
# copy's reference, and the start of the closed_reason it set.
FORWARDED = "transmise à"
NOTE = re.compile(rf"{FORWARDED} .+ \(([0-9A-Z]{{4}}-[0-9A-Z]{{4}})\)")


def _forward_keys(original_id: int, copy_territory_id: int) -> set[str]:
    """The submission keys the forwarding of `original_id` gives its copy: scoped to the
    copy's CPTS since 0015 (services.intake.scoped_key), the bare key before."""
    bare = f"forward:{original_id}"
    return {bare, hashlib.sha256(f"{copy_territory_id}:{bare}".encode()).hexdigest()}


def _link_forwarded() -> int:
    """Fill forwarded_to_id of the requests closed as forwarded; return how many."""
    bind = op.get_bind()
    # Closed requests store the enum's name; events store the status's value.
    closings = bind.execute(
        sa.text(
            "SELECT r.id, e.note FROM requests r JOIN request_events e ON e.request_id = r.id"
            " WHERE r.status = 'CLOSED' AND r.closed_reason LIKE :forwarded"
            " AND r.forwarded_to_id IS NULL AND e.to_status = 'closed' ORDER BY r.id, e.id"
        ),
        {"forwarded": f"{FORWARDED} %"},
    )
    named: dict[int, str] = {}
    for original_id, note in closings:
        found = NOTE.fullmatch(note or "")
        if found:  # the last closing note naming a copy counts, as it did when read
            named[original_id] = found.group(1)
    if not named:
        return 0
    copies = {
        reference: (copy_id, territory_id, key)
        for copy_id, territory_id, reference, key in bind.execute(
            sa.text(
                "SELECT id, territory_id, reference, submission_key FROM requests"
                " WHERE reference IN :references"
            ).bindparams(sa.bindparam("references", expanding=True)),
            {"references": sorted(set(named.values()))},
        )
    }
    links = []
    for original_id, reference in named.items():
        copy = copies.get(reference)
        if copy is not None and copy[2] in _forward_keys(original_id, copy[1]):
            links.append({"original": original_id, "copy": copy[0]})
    if links:
        bind.execute(
            sa.text("UPDATE requests SET forwarded_to_id = :copy WHERE id = :original"), links
        )
    return len(links)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Plain ALTER TABLE ADD COLUMN, the constraint written with the column: a batch
        # operation would rebuild `requests`, and dropping the old table there deletes the
        # persons and events that reference it (ON DELETE CASCADE).
        op.execute(
            "ALTER TABLE requests ADD COLUMN forwarded_to_id INTEGER"
            f" CONSTRAINT {FK} REFERENCES requests (id) ON DELETE SET NULL"
        )
    else:
        op.add_column("requests", sa.Column("forwarded_to_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            FK, "requests", "requests", ["forwarded_to_id"], ["id"], ondelete="SET NULL"
        )
    op.create_index(
        INDEX, "requests", ["forwarded_to_id"],
        postgresql_where=sa.text(FORWARDED_SQL), sqlite_where=sa.text(FORWARDED_SQL),
    )  # fmt: skip
    _link_forwarded()


def downgrade() -> None:
    # The closing notes still name the copies: 0015's code reads them again.
    op.drop_index(INDEX, table_name="requests")
    # Plain ALTER TABLE on both databases (SQLite 3.35 and later drops a column, its
    # column-level constraint with it).
    op.execute("ALTER TABLE requests DROP COLUMN forwarded_to_id")
