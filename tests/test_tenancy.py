"""A session scoped to one territory neither reads nor writes another territory's rows."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models import Doctor, Person, Request, Territory
from models.tenancy import CrossTenantWrite, scope_to_territory


def test_scoped_session_sees_only_its_territory(
    app,
    make_territory: Callable[..., Territory],
    make_doctor: Callable[..., Doctor],  # type: ignore[no-untyped-def]
    make_request: Callable[..., Request],
) -> None:
    mine, other = make_territory(), make_territory()
    make_doctor(mine)
    foreign_doctor = make_doctor(other)
    foreign_request = make_request(other)
    from models.engine import make_sessionmaker

    scoped = scope_to_territory(make_sessionmaker(app.extensions["orientation.engine"])(), mine.id)
    assert [d.territory_id for d in scoped.scalars(select(Doctor))] == [mine.id]
    assert scoped.get(Doctor, foreign_doctor.id) is None
    assert scoped.get(Request, foreign_request.id) is None
    assert scoped.scalars(select(Person)).all() == []
    scoped.execute(update(Doctor).values(capacity_left=99))
    scoped.commit()
    scoped.close()


def test_bulk_updates_stop_at_the_territory_border(
    app,
    session: Session,
    make_territory: Callable[..., Territory],  # type: ignore[no-untyped-def]
    make_doctor: Callable[..., Doctor],
) -> None:
    mine, other = make_territory(), make_territory()
    make_doctor(mine)
    foreign = make_doctor(other, capacity_left=2)
    from models.engine import make_sessionmaker

    scoped = scope_to_territory(make_sessionmaker(app.extensions["orientation.engine"])(), mine.id)
    scoped.execute(update(Doctor).values(capacity_left=99))
    scoped.commit()
    scoped.close()
    session.expire_all()
    assert session.get(Doctor, foreign.id).capacity_left == 2  # type: ignore[union-attr]


def test_scoped_session_refuses_to_write_a_row_of_another_territory(
    app,
    make_territory: Callable[..., Territory],  # type: ignore[no-untyped-def]
) -> None:
    mine, other = make_territory(), make_territory()
    from models.engine import make_sessionmaker

    scoped = scope_to_territory(make_sessionmaker(app.extensions["orientation.engine"])(), mine.id)
    scoped.add(Doctor(territory_id=other.id, rpps="10000000001", first_name="A", last_name="B"))
    with pytest.raises(CrossTenantWrite):
        scoped.flush()
    scoped.rollback()
    scoped.close()
