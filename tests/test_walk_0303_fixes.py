"""Fixes from the walk of 3 December: a radius that is not a number is refused once (not also
as out of range), the template editor's tab names the message in French, and a limited
request's rights page does not say how a new private link would leave."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Doctor, Request, Role, Territory, User
from tests.conftest import AuthActions
from tests.test_small_walk_fixes import _card


@pytest.fixture
def territory(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory()


@pytest.fixture
def coordinator(auth: AuthActions, territory: Territory, make_user: Callable[..., User]) -> User:
    user = make_user(territory)
    auth.login(user)
    return user


def _radius_error(page: str) -> str:
    field = re.search(
        r'<div class="field[^"]*">(?:(?!<div class="field).)*?id="home_visit_radius_km".*?</div>',
        page,
        re.S,
    )
    assert field is not None, page
    return html.unescape(re.sub(r"<[^>]+>", " ", field.group(0)))


@pytest.mark.parametrize("typed", ["abc", "7 km5"])
def test_a_radius_that_is_not_a_number_is_said_once(
    client: FlaskClient, session: Session, coordinator: User, typed: str
) -> None:
    response = client.post("/espace/medecins/nouveau", data=_card(home_visit_radius_km=typed))
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    said = _radius_error(page)
    assert "Indiquez un rayon en kilomètres, par exemple 7,5." in said
    assert "entre 0 et 100 km" not in html.unescape(page)
    assert session.scalars(select(Doctor)).all() == []


def test_a_radius_out_of_range_is_still_refused_and_a_blank_one_is_allowed(
    client: FlaskClient, session: Session, coordinator: User
) -> None:
    response = client.post("/espace/medecins/nouveau", data=_card(home_visit_radius_km="1000"))
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 422
    assert "Indiquez un rayon entre 0 et 100 km." in page
    assert "par exemple 7,5" not in page
    no_visits = _card(home_visit_radius_km="")
    del no_visits["home_visits"]
    blank = client.post("/espace/medecins/nouveau", data=no_visits)
    assert blank.status_code == 302, blank.get_data(as_text=True)
    assert len(session.scalars(select(Doctor)).all()) == 1


def test_the_template_editor_tab_names_the_message_in_french(
    client: FlaskClient,
    auth: AuthActions,
    territory: Territory,
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    page = html.unescape(client.get("/espace/modeles/acknowledgement/sms").get_data(as_text=True))
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    assert title is not None
    assert "Accusé de réception" in title.group(1) and "SMS" in title.group(1)
    assert "acknowledgement" not in title.group(1)


def test_a_limited_request_does_not_say_how_a_new_link_would_leave(
    client: FlaskClient,
    coordinator: User,
    territory: Territory,
    make_request: Callable[..., Request],
) -> None:
    limited = make_request(territory, processing_limited_at=datetime(2026, 3, 2, 10, tzinfo=UTC))
    page = html.unescape(client.get(f"/espace/droits/{limited.id}").get_data(as_text=True))
    section = page[page.index('id="lien-prive"') : page.index('id="rectifier"')]
    assert "Pas de nouveau lien tant que le traitement est limité" in section
    assert "Il part par" not in section
    assert "Envoyer un nouveau lien privé" not in section
    other = make_request(territory)
    page = html.unescape(client.get(f"/espace/droits/{other.id}").get_data(as_text=True))
    assert "Il part par" in page and "Envoyer un nouveau lien privé" in page
