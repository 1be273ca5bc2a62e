"""The queue: open requests of my CPTS, priority first then oldest, filtered, paginated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Request, Source, Status, Territory, User, utcnow
from orientation.services.queue import Cursor, QueueFilters, queue_page, waiting_label
from tests.conftest import AuthActions

MakeRequest = Callable[..., Request]


def _walk(session: Session, territory: Territory, filters: QueueFilters, limit: int) -> list[int]:
    ids: list[int] = []
    cursor = None
    while True:
        page = queue_page(session, territory.id, utcnow(), filters, cursor, limit=limit)
        ids += [row.request.id for row in page.rows]
        if page.next_cursor is None:
            return ids
        cursor = Cursor.decode(page.next_cursor)


def test_priority_requests_come_first_then_the_oldest(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    territory = make_territory()
    now = utcnow()
    old = make_request(territory, created_at=now - timedelta(days=9))
    young_priority = make_request(territory, is_priority=True, created_at=now - timedelta(days=1))
    old_priority = make_request(territory, is_priority=True, created_at=now - timedelta(days=3))
    newest = make_request(territory, Status.RECEIVED, created_at=now - timedelta(hours=2))
    make_request(territory, Status.ORIENTED, created_at=now - timedelta(days=30))
    page = queue_page(session, territory.id, now)
    assert [r.request.id for r in page.rows] == [
        old_priority.id,
        young_priority.id,
        old.id,
        newest.id,
    ]
    assert waiting_label(page.rows[0].waiting) == "3 j 0 h"
    assert page.next_cursor is None


def test_pages_walk_every_open_request_once_even_with_equal_timestamps(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    territory = make_territory()
    same = utcnow() - timedelta(days=2)
    expected_priority, expected_rest = [], []
    for i in range(23):
        priority = i % 3 == 0
        status = [Status.RECEIVED, Status.ELIGIBLE, Status.DOCTORS_CONTACTED][i % 3]
        created = same if i % 2 else same + timedelta(minutes=i)
        r = make_request(territory, status, is_priority=priority, created_at=created)
        (expected_priority if priority else expected_rest).append((r.created_at, r.id))
    expected = [i for _, i in sorted(expected_priority)] + [i for _, i in sorted(expected_rest)]
    assert _walk(session, territory, QueueFilters(), limit=5) == expected


def test_filters_narrow_the_queue(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    territory = make_territory()
    phone = make_request(territory, source=Source.PHONE)
    home = make_request(territory, need_home_visits=True, commune_insee="59431")
    received = make_request(territory, Status.RECEIVED, is_priority=True)
    exhausted = make_request(territory, Status.DOCTORS_CONTACTED, cascade_state="exhausted")

    def ids(**kwargs: object) -> set[int]:
        return set(_walk(session, territory, QueueFilters(**kwargs), limit=50))  # type: ignore[arg-type]

    assert ids(source=Source.PHONE) == {phone.id}
    assert ids(need="home_visits") == {home.id}
    assert ids(commune_insee="59431") == {home.id}
    assert ids(status=Status.RECEIVED) == {received.id}
    assert ids(priority_only=True) == {received.id}
    assert ids(alert_only=True) == {exhausted.id}
    page = queue_page(session, territory.id, utcnow())
    assert page.counts[Status.ELIGIBLE] == 2 and page.counts[Status.RECEIVED] == 1
    assert page.alerts == 1


def test_malformed_cursor_falls_back_to_the_first_page() -> None:
    assert Cursor.decode("1.abc.3") is None
    assert Cursor.decode("2.1.3") is None
    assert Cursor.decode("") is None


def test_coordinator_sees_only_their_cpts_queue_and_the_read_is_audited(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    mine, other = make_territory(), make_territory()
    mine_request = make_request(mine, persons=[("Paulette", "Durand", None)], is_priority=True)
    other_request = make_request(other, persons=[("Secret", "Ailleurs", None)])
    user = make_user(mine)
    auth.login(user)
    page = client.get("/espace/demandes").get_data(as_text=True)
    assert "Paulette Durand" in page and mine_request.reference in page
    assert "Secret Ailleurs" not in page and other_request.reference not in page
    assert "prioritaire" in page
    filtered = client.get("/espace/demandes?statut=received").get_data(as_text=True)
    assert "Paulette Durand" not in filtered
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.user_id == user.id)).all()
    assert "queue.read" in actions


def test_dashboard_counts_link_into_the_filtered_queue(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    territory = make_territory()
    make_request(territory, Status.RECEIVED)
    auth.login(make_user(territory))
    page = client.get("/espace/").get_data(as_text=True)
    assert 'href="/espace/demandes?statut=received"' in page
    assert 'href="/espace/demandes?priorite=1"' in page


def test_requests_flagged_by_the_follow_up_are_shown_counted_and_filtered(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    territory = make_territory()
    back = make_request(territory, Status.IN_PROGRESS, needs_follow_up=True)
    undeclared = make_request(territory, Status.ORIENTED, needs_follow_up=True)
    make_request(territory, Status.ELIGIBLE)
    make_request(territory, Status.ORIENTED)  # done, not flagged: never in the queue
    make_request(territory, Status.CLOSED, needs_follow_up=True)  # closed: nothing to do
    flagged = set(_walk(session, territory, QueueFilters(follow_up_only=True), limit=1))
    assert flagged == {back.id, undeclared.id}
    page = queue_page(session, territory.id, utcnow())
    assert page.follow_ups == 2 and sum(page.counts.values()) == 2
    auth.login(make_user(territory))
    html = client.get("/espace/demandes").get_data(as_text=True)
    assert "À rappeler après le suivi <strong>2</strong>" in html
    assert html.count("à rappeler (suivi)") == 1  # the oriented one is only behind the filter
    filtered = client.get("/espace/demandes?suivi=1").get_data(as_text=True)
    assert undeclared.reference in filtered and back.reference in filtered
    assert filtered.count("à rappeler (suivi)") == 2


def test_the_commune_filter_offers_the_cpts_communes_by_name(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: MakeRequest,
) -> None:
    # A tester typed the postal code 59116 into a box that wanted an INSEE code: 0 rows.
    territory = make_territory("CPTS Lys", ["59017", "59457"])
    make_request(territory, persons=[("Paulette", "Durand", None)], commune_insee="59457")
    make_request(territory, persons=[("Jeanne", "Martin", None)], commune_insee="59017")
    auth.login(make_user(territory))
    page = client.get("/espace/demandes").get_data(as_text=True)
    assert '<option value="59017">Armentières</option>' in page
    assert '<option value="59457">Pérenchies</option>' in page
    chosen = client.get("/espace/demandes?commune=59457").get_data(as_text=True)
    assert "Paulette Durand" in chosen and "Jeanne Martin" not in chosen
    assert '<option value="59457" selected>Pérenchies</option>' in chosen
