"""Small fixes from a review: the doctor's "Non" link records a refusal only, the coordinator's
card reads a home-visit radius typed with a comma, an edited message with loops that write
nothing is refused, and two first wrong passwords at once both get the refusal page."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, insert, select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Channel,
    ContactStatus,
    Doctor,
    DoctorContact,
    MessageTemplate,
    Request,
    Role,
    Status,
    Territory,
    User,
    utcnow,
)
from models.user import LoginFailure
from notifications.templates import MessageTemplateError, render_message
from orientation.links import LinkSigner
from orientation.services.doctor_contacts import Links
from orientation.services.doctors import rpps_with_key
from tests.conftest import AuthActions

SECRET = "test-secret-" + "x" * 40
LINKS = Links(LinkSigner(SECRET), "http://localhost")
ACCEPT_BUTTON = "Oui, je peux le prendre"
DECLINE_BUTTON = "Non, je ne peux pas"


@pytest.fixture
def territory(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory(name="CPTS Lys")


# 1. The doctor's "Non" link records a refusal only.


def _asked(
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> DoctorContact:
    request = make_request(territory, Status.DOCTORS_CONTACTED)
    doctor = make_doctor(territory, capacity_left=2)
    contact = DoctorContact(territory_id=territory.id, request_id=request.id, doctor_id=doctor.id)
    session.add(contact)
    session.commit()
    return contact


def _answer_url(contact: DoctorContact, answer: str) -> str:
    return LINKS.doctor_answer(contact.id, answer).removeprefix("http://localhost")


def test_the_no_link_offers_only_the_refusal_and_says_where_the_yes_link_is(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    contact = _asked(session, territory, make_request, make_doctor)
    page = html.unescape(client.get(_answer_url(contact, "decline")).get_data(as_text=True))
    assert DECLINE_BUTTON in page and ACCEPT_BUTTON not in page
    assert "Ouvrez plutôt le lien « Oui » du message" in page
    # The "Oui" page keeps both, as designed: declining from it takes nothing.
    page = client.get(_answer_url(contact, "accept")).get_data(as_text=True)
    assert ACCEPT_BUTTON in page and DECLINE_BUTTON in page


def test_an_accept_posted_through_the_no_link_records_nothing_and_takes_no_place(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    contact = _asked(session, territory, make_request, make_doctor)
    url = _answer_url(contact, "decline")
    response = client.post(url, data={"answer": "accept"})
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert "Ce lien sert à décliner : rien n'a été enregistré" in page
    assert ACCEPT_BUTTON not in page
    session.expire_all()
    assert session.get(DoctorContact, contact.id).status is ContactStatus.ASKED  # type: ignore[union-attr]
    assert session.get(Doctor, contact.doctor_id).capacity_left == 2  # type: ignore[union-attr]
    assert (
        session.scalars(select(AuditEntry).where(AuditEntry.action == "doctor.answer")).all() == []
    )

    declined = client.post(url, data={"answer": "decline"}).get_data(as_text=True)
    assert "Merci, votre réponse est enregistrée" in declined
    session.expire_all()
    assert session.get(DoctorContact, contact.id).status is ContactStatus.DECLINED  # type: ignore[union-attr]


def test_the_yes_link_can_still_decline(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    contact = _asked(session, territory, make_request, make_doctor)
    page = client.post(_answer_url(contact, "accept"), data={"answer": "decline"})
    assert "Merci, votre réponse est enregistrée" in page.get_data(as_text=True)
    session.expire_all()
    assert session.get(DoctorContact, contact.id).status is ContactStatus.DECLINED  # type: ignore[union-attr]
    assert session.get(Doctor, contact.doctor_id).capacity_left == 2  # type: ignore[union-attr]


# 2. The coordinator's card reads "7,5" km as the doctor's own form does.


def _card(**fields: str) -> dict[str, str]:
    values = {
        "rpps": rpps_with_key("1000012345"),
        "last_name": "Lefèvre",
        "first_name": "Hélène",
        "postal_code": "59280",
        "commune": "Armentières",
        "preferred_channel": "email",
        "volunteer_status": "volunteer",
        "accepting": "yes",
        "capacity_left": "3",
        "home_visits": "y",
    }
    values.update(fields)
    return values


@pytest.fixture
def coordinator(auth: AuthActions, territory: Territory, make_user: Callable[..., User]) -> User:
    user = make_user(territory)
    auth.login(user)
    return user


def _radius_input(page: str) -> str:
    found = re.search(r'<input[^>]*id="home_visit_radius_km"[^>]*>', page)
    assert found is not None, page
    return found.group(0)


@pytest.mark.parametrize("typed", ["7,5", "7.5", " 7,5 "])
def test_the_card_takes_a_radius_typed_with_a_comma_or_a_point(
    client: FlaskClient, session: Session, coordinator: User, typed: str
) -> None:
    field = _radius_input(client.get("/espace/medecins/nouveau").get_data(as_text=True))
    assert 'type="text"' in field and 'inputmode="decimal"' in field
    response = client.post("/espace/medecins/nouveau", data=_card(home_visit_radius_km=typed))
    assert response.status_code == 302, response.get_data(as_text=True)
    doctor = session.scalars(select(Doctor)).one()
    assert doctor.home_visit_radius_km == 7.5
    card = client.get(f"/espace/medecins/{doctor.id}").get_data(as_text=True)
    assert 'value="7,5"' in _radius_input(card)


def test_a_radius_that_is_not_a_number_is_refused_in_french_and_kept_as_typed(
    client: FlaskClient, session: Session, coordinator: User
) -> None:
    response = client.post("/espace/medecins/nouveau", data=_card(home_visit_radius_km="7 km5"))
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 422
    assert "Indiquez un rayon en kilomètres, par exemple 7,5." in page
    assert "Not a valid" not in page
    assert 'value="7 km5"' in _radius_input(page)
    assert session.scalars(select(Doctor)).all() == []


# 3. An edited message whose loops write nothing is refused, not left running.

IDLE_LOOPS = [
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}{{ link }}",
    "{% set s = range(20000)|join %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    "{{ link }}",
    "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}"
    "{{ link }}",
]


@pytest.mark.parametrize("body", IDLE_LOOPS)
def test_a_template_looping_without_writing_is_refused(body: str) -> None:
    # Said by the count of steps, or by the clock on a slow machine: refused either way.
    with pytest.raises(MessageTemplateError, match="calcul trop long"):
        render_message("doctor_reminder", Channel.SMS, {"link": "x"}, override=body)


def test_the_editor_refuses_idle_nested_loops_in_french_and_saves_nothing(
    client: FlaskClient,
    session: Session,
    auth: AuthActions,
    territory: Territory,
    make_user: Callable[..., User],
) -> None:
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    response = client.post(
        "/espace/modeles/doctor_reminder/sms", data={"body": IDLE_LOOPS[0], "action": "save"}
    )
    page = html.unescape(response.get_data(as_text=True))
    assert response.status_code != 302
    assert "modèle « doctor_reminder » : calcul trop long" in page
    assert session.scalars(select(MessageTemplate)).all() == []


def test_loops_a_message_needs_still_render() -> None:
    body = (
        "{% for d in doctors %}{{ loop.index }}/{{ loop.length }} {{ d }}"
        "{% if not loop.last %}, {% endif %}{% else %}aucun{% endfor %}"
        "{% for i in range(5) if i is even %} {{ i }}{% endfor %}"
    )
    rendered = render_message("x", Channel.SMS, {"doctors": ["Dr A", "Dr B"]}, override=body)
    assert rendered.body == "1/2 Dr A, 2/2 Dr B 0 2 4"


# 4. Two first wrong passwords at once from one address.

HERE = "198.51.100.7"


@pytest.fixture
def other_request_fails_meanwhile(app: Flask) -> Iterator[dict[str, Any]]:
    """Just after a login reads the address's failures, another request (another connection)
    counts its own first failure: what two logins at once do, made certain."""
    engine = app.extensions["orientation.engine"]
    state: dict[str, Any] = {"user_id": None, "done": False}

    def _after(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if state["done"] or state["user_id"] is None:
            return
        if statement.lstrip().upper().startswith("SELECT") and "FROM login_failures" in statement:
            state["done"] = True
            with engine.begin() as other:
                other.execute(
                    insert(LoginFailure).values(
                        user_id=state["user_id"], ip=HERE, failures=1, first_failed_at=utcnow()
                    )
                )

    event.listen(engine, "after_cursor_execute", _after)
    yield state
    event.remove(engine, "after_cursor_execute", _after)


def test_two_first_failures_at_once_both_get_the_refusal_and_both_count(
    client: FlaskClient,
    session: Session,
    territory: Territory,
    make_user: Callable[..., User],
    other_request_fails_meanwhile: dict[str, Any],
) -> None:
    user = make_user(territory)
    other_request_fails_meanwhile["user_id"] = user.id
    response = client.post(
        "/connexion",
        data={"email": user.email, "password": "wrong-password-1"},
        environ_base={"REMOTE_ADDR": HERE},
    )
    assert other_request_fails_meanwhile["done"]  # the other failure came in between
    assert response.status_code == 401
    assert "Adresse e-mail ou mot de passe incorrect" in response.get_data(as_text=True)
    failure = session.get(LoginFailure, (user.id, HERE))
    assert failure is not None and failure.failures == 2 and failure.locked_until is None
