"""The rights desk as a coordinator walks it: data held in French, names and birth dates
rectified (priority following), a landline moving the SMS preference, references found
however typed."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Person, Request, Status, Territory, User, utcnow
from orientation.services.rights_rectification import Correction as Fix
from orientation.services.rights_rectification import InvalidCorrection, correct_request
from tests.conftest import AuthActions

MakeRequest = Callable[..., Request]
ROSE = ("Rose", "Vermeulen", date(1990, 1, 21))


@pytest.fixture
def desk(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
) -> tuple[FlaskClient, Territory]:
    """A coordinator logged in at the rights desk of their CPTS."""
    territory = make_territory()
    auth.login(make_user(territory))
    return client, territory


def _text(client: FlaskClient, url: str) -> str:
    return html.unescape(client.get(url).get_data(as_text=True))


def _contact_form(request: Request, **changes: str) -> dict[str, str]:
    """The rectification form as the page fills it, with `changes` typed over it."""
    form = {
        "phone": "06 12 34 56 78",
        "email": request.email,
        "street": request.street,
        "best_time": request.best_time,
    }
    for i, person in enumerate(request.persons):
        form[f"persons-{i}-first_name"] = person.first_name
        form[f"persons-{i}-last_name"] = person.last_name
        born = person.birth_date
        form[f"persons-{i}-birth_date"] = born.strftime("%d/%m/%Y") if born else ""
    return {**form, **changes}


def _reloaded(session: Session, request: Request) -> Request:
    session.expire_all()
    found = session.get(Request, request.id)
    assert found is not None
    return found


def test_the_data_held_reads_in_french_with_paris_times_and_the_copy_stays_raw(
    desk: tuple[FlaskClient, Territory], make_request: MakeRequest
) -> None:
    client, territory = desk
    request = make_request(
        territory,
        Status.PROPOSED,
        persons=[ROSE],
        created_at=datetime(2026, 11, 12, 17, 32, 50, tzinfo=UTC),
        email="rose.vermeulen@example.org",
        need_home_visits=True,
        agrees_to_survey=False,
    )
    page = _text(client, f"/espace/droits/{request.id}")
    held = page[page.index("Données détenues") : page.index("Personnes du foyer")]
    for shown in (
        "Proposition envoyée",  # the status
        "Questionnaire",  # the source
        "Médecin parti ou à la retraite",  # the reason
        "12/11/2026 18:32",  # created and consented, in Paris time
        "Armentières",  # the commune by its name
        "06 12 34 56 78",
        "SMS",
        "Besoin de visites à domicile",
    ):
        assert shown in held, shown
    for raw in ("proposed", "gp_left", "need_home_visits", "created_at", "False", "True", "+00:00"):
        assert raw not in held, raw
    assert "21/01/1990" in page  # the person's birth date
    copy = client.get(f"/espace/droits/{request.id}/donnees.json").get_json()
    assert copy["request"]["status"] == "proposed" and copy["request"]["reason"] == "gp_left"
    assert copy["request"]["created_at"].startswith("2026-11-12T17:32:50")
    assert copy["request"]["need_home_visits"] is True


def test_a_misspelt_name_and_a_wrong_birth_date_are_rectified_and_priority_follows(
    desk: tuple[FlaskClient, Territory], session: Session, make_request: MakeRequest
) -> None:
    client, territory = desk
    request = make_request(territory, Status.ELIGIBLE, persons=[ROSE])
    assert not request.is_priority
    url = f"/espace/droits/{request.id}/rectifier"
    form = _contact_form(request, **{
        "persons-0-first_name": "Rosa", "persons-0-birth_date": "21/01/1950",
    })  # fmt: skip
    assert client.post(url, data=form).status_code == 302

    fixed = _reloaded(session, request)
    person = fixed.persons[0]
    assert (person.first_name, person.last_name, person.birth_date) == (
        "Rosa",
        "Vermeulen",
        date(1950, 1, 21),
    )
    assert fixed.has_elderly and fixed.is_priority
    assert request.reference in _text(client, "/espace/demandes?priorite=1")
    page = _text(client, f"/espace/droits/{request.id}")
    assert 'value="Rosa"' in page and 'value="21/01/1950"' in page
    # The history names the corrected fields, never what they hold.
    note = next(e.note for e in reversed(fixed.events) if e.kind == "rectified")
    assert f"person:{person.id}:first_name" in note and f"person:{person.id}:birth_date" in note
    assert "Rosa" not in note and "1950" not in note
    assert "rights.rectification" in set(session.scalars(select(AuditEntry.action)))


def test_a_child_s_corrected_birth_date_takes_the_priority_away(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    request = make_request(make_territory(), persons=[ROSE, ("Léo", "Vermeulen", date(2022, 3, 1))])
    assert request.has_child and request.is_priority
    leo = request.persons[1]
    correct_request(session, request, Fix(birth_dates={leo.id: "01/03/2012"}), utcnow())
    assert leo.birth_date == date(2012, 3, 1)
    assert not request.has_child and not request.is_priority


def test_a_wrong_birth_date_is_refused_on_its_field_with_everything_typed_kept_and_nothing_saved(
    desk: tuple[FlaskClient, Territory], session: Session, make_request: MakeRequest
) -> None:
    client, territory = desk
    request = make_request(
        territory, persons=[ROSE, ("Léo", "Vermeulen", date(2022, 3, 1))], street="1 rue Haute"
    )
    url = f"/espace/droits/{request.id}/rectifier"
    form = _contact_form(request, **{
        "street": "3 rue Neuve", "persons-0-first_name": "", "persons-1-last_name": "Vermeulenn",
        "persons-1-birth_date": "31/02/2020",
    })  # fmt: skip
    refused = client.post(url, data=form)
    assert refused.status_code == 400
    page = html.unescape(refused.get_data(as_text=True))
    assert 'id="persons-0-first_name-error">Indiquez le prénom.' in page
    assert 'id="persons-1-birth_date-error">Cette date n\'existe pas' in page
    assert 'value="3 rue Neuve"' in page and 'value="Vermeulenn"' in page
    assert 'value="31/02/2020"' in page
    kept = _reloaded(session, request)
    assert kept.street == "1 rue Haute"
    assert [(p.first_name, p.last_name) for p in kept.persons] == [
        ("Rose", "Vermeulen"),
        ("Léo", "Vermeulen"),
    ]
    assert not any(event.kind == "rectified" for event in kept.events)
    # The page shown again was a read of the patient's data: audited like any other.
    assert session.scalar(select(AuditEntry).where(AuditEntry.action == "request.read"))


def test_a_birth_date_in_the_future_is_refused_by_the_service_changing_nothing(
    session: Session, make_territory: Callable[..., Territory], make_request: MakeRequest
) -> None:
    request = make_request(make_territory(), persons=[ROSE])
    rose: Person = request.persons[0]
    fix = Fix(phone="06 99 88 77 66", names={rose.id: ("Rosa", "Vermeulen")},
              birth_dates={rose.id: "01/01/2999"})  # fmt: skip
    with pytest.raises(InvalidCorrection) as caught:
        correct_request(session, request, fix, utcnow())
    [error] = caught.value.errors
    assert (error.field, error.person_id) == ("birth_date", rose.id)
    assert "futur" in error.message
    assert request.phone == "+33612345678" and rose.first_name == "Rose"


@pytest.mark.parametrize(
    ("email", "channel", "said"),
    [
        ("rose@example.org", "email", "le canal préféré passe à l'e-mail."),
        ("", "phone", "le canal préféré passe à l'appel téléphonique."),
    ],
)
def test_a_landline_moves_the_sms_preference_and_the_coordinator_is_told(
    desk: tuple[FlaskClient, Territory],
    session: Session,
    make_request: MakeRequest,
    email: str,
    channel: str,
    said: str,
) -> None:
    client, territory = desk
    request = make_request(territory, persons=[ROSE], email=email, preferred_channel="sms")
    url = f"/espace/droits/{request.id}/rectifier"
    done = client.post(url, data=_contact_form(request, phone="03 20 12 34 56"),
                       follow_redirects=True)  # fmt: skip
    page = html.unescape(done.get_data(as_text=True))
    fixe = "Le nouveau numéro est un fixe, il ne reçoit pas de SMS"
    assert f"Rectification enregistrée. {fixe} : {said}" in page
    fixed = _reloaded(session, request)
    assert (fixed.phone, fixed.preferred_channel) == ("+33320123456", channel)
    note = next(e.note for e in reversed(fixed.events) if e.kind == "rectified")
    assert note == "phone, preferred_channel"


def test_a_new_mobile_keeps_the_sms_preference(
    desk: tuple[FlaskClient, Territory], session: Session, make_request: MakeRequest
) -> None:
    client, territory = desk
    request = make_request(territory, persons=[ROSE], email="rose@example.org")
    url = f"/espace/droits/{request.id}/rectifier"
    done = client.post(url, data=_contact_form(request, phone="07 98 76 54 32"),
                       follow_redirects=True)  # fmt: skip
    assert '"flash flash-success" role="status">Rectification enregistrée.</p>' in html.unescape(
        done.get_data(as_text=True)
    )
    assert _reloaded(session, request).preferred_channel == "sms"


@pytest.mark.parametrize("typed", ["{compact}", "{compact_lower}", " {lower} ", "{spaced}"])
def test_the_desk_finds_a_reference_typed_without_its_hyphen_or_in_lower_case(
    desk: tuple[FlaskClient, Territory], make_request: MakeRequest, typed: str
) -> None:
    client, territory = desk
    request = make_request(territory)
    reference = request.reference
    compact = reference.replace("-", "")
    text = typed.format(
        compact=compact,
        compact_lower=compact.lower(),
        lower=reference.lower(),
        spaced=reference.replace("-", " "),
    )
    found = client.post("/espace/droits", data={"reference": text})
    assert found.status_code == 302
    assert found.headers["Location"] == f"/espace/droits/{request.id}"
