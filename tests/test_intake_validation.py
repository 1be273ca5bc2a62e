"""Bad input, as people type it: a French message on its own field, the rest kept, nothing saved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Request, Territory
from orientation.services.intake_validation import (
    IntakeInvalid,
    form_to_payload,
    validate_submission,
)
from tests.test_intake import answers

TODAY = date(2026, 11, 23)


def check(**changes: str) -> dict[str, str]:
    """The errors of the questionnaire with these answers changed ({} when it is valid)."""
    try:
        validate_submission(form_to_payload(answers(**changes)), today=TODAY)
    except IntakeInvalid as error:
        return error.errors
    return {}


@pytest.mark.parametrize(
    "typed",
    [
        "06 12 34 56 78",
        "06.12.34.56.78",
        "0612345678",
        "06-12-34-56-78",
        "+33 6 12 34 56 78",
        "+33612345678",
        "0033 6 12 34 56 78",
        "+32 470 12 34 56",  # Belgian mobile: a border region
        "0032 470 12 34 56",
    ],
)
def test_phone_numbers_in_every_french_and_belgian_habit_are_accepted(typed: str) -> None:
    assert check(phone=typed) == {}


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("06 12 34", "Ce numéro de téléphone n'existe pas"),
        ("bonjour", "n'est pas lisible"),
        ("+44 7911 123456", "Indiquez un numéro français ou belge."),
        ("06 12 34 56 78 90 12", "Ce numéro de téléphone"),
    ],
)
def test_invalid_phone_numbers_get_a_french_message_on_the_phone(typed: str, message: str) -> None:
    errors = check(phone=typed)
    assert list(errors) == ["phone"]
    assert message in errors["phone"]


def test_a_landline_cannot_receive_the_sms_asked_for() -> None:
    assert check(phone="03 20 12 34 56", preferred_channel="sms") == {
        "preferred_channel": "Pour recevoir des SMS, indiquez un numéro de portable."
    }
    assert check(phone="03 20 12 34 56", preferred_channel="phone") == {}


@pytest.mark.parametrize(
    ("typed", "valid"),
    [
        ("jeanne.martin@example.fr", True),
        ("Jeanne.Martin@Laposte.net", True),
        ("jeanne.martin@", False),
        ("jeanne.martin@example", False),
        ("jeanne martin@example.fr", False),
        ("@example.fr", False),
    ],
)
def test_email_addresses_need_a_domain_of_valid_form(typed: str, valid: bool) -> None:
    errors = check(email=typed)
    if valid:
        assert errors == {}
    else:
        assert list(errors) == ["email"]
        assert "n'est pas valide" in errors["email"]


def test_a_contact_is_required() -> None:
    assert list(check(phone="", email="", preferred_channel="")) == ["phone"]


@pytest.mark.parametrize(
    ("postal_code", "message"),
    [
        ("99999", "Nous ne connaissons pas ce code postal"),
        ("5928", "Le code postal compte 5 chiffres"),
        ("", "Indiquez le code postal."),
    ],
)
def test_bad_postal_codes_are_refused_on_their_field(postal_code: str, message: str) -> None:
    errors = check(postal_code=postal_code)
    assert list(errors) == ["postal_code"]
    assert message in errors["postal_code"]


def test_a_commune_not_of_that_postal_code_offers_the_right_communes() -> None:
    with pytest.raises(IntakeInvalid) as raised:
        validate_submission(form_to_payload(answers(commune="Lille")), today=TODAY)
    assert list(raised.value.errors) == ["commune"]
    assert "« Lille » n'est pas une commune du code postal 59280" in raised.value.errors["commune"]
    assert [c.name for c in raised.value.communes] == ["Armentières", "Bois-Grenier"]


@pytest.mark.parametrize(
    ("postal_code", "typed"),
    [
        ("59280", "armentieres"),
        ("59280", "ARMENTIÈRES"),
        ("59280", "Bois Grenier"),
        ("59280", "bois-grenier"),
        ("59280", " Armentières "),
        ("02600", "Cœuvres-et-Valsery"),
        ("02600", "COEUVRES ET VALSERY"),
        ("62500", "St-Omer"),
        ("62500", "saint omer"),
        ("59930", "La Chapelle-d'Armentières"),
        ("59930", "la chapelle d’armentieres"),
    ],
)
def test_commune_names_match_however_they_are_typed(postal_code: str, typed: str) -> None:
    assert check(postal_code=postal_code, commune=typed) == {}


@pytest.mark.parametrize(
    "name",
    ["Jean-Pierre", "Zoé", "D'Hondt", "N’Diaye", "Van der Berghe", "Lætitia", "O'Neil-Öztürk"],
)
def test_names_with_accents_hyphens_and_apostrophes_are_kept_as_typed(name: str) -> None:
    data = validate_submission(
        form_to_payload(answers(**{"persons-0-first_name": name, "persons-0-last_name": name})),
        today=TODAY,
    )
    assert data.persons[0].first_name == name and data.persons[0].last_name == name


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("2027-01-01", "La date de naissance ne peut pas être dans le futur."),
        ("1899-12-31", "Vérifiez l'année : la date de naissance est avant 1900."),
        ("31/02/1980", "Cette date n'existe pas : vérifiez le jour et le mois."),
        ("hier", "Date de naissance illisible : écrivez-la comme 07/03/1950."),
        ("", "Indiquez la date de naissance."),
    ],
)
def test_bad_birth_dates_are_refused_on_their_field(typed: str, message: str) -> None:
    assert check(**{"persons-0-birth_date": typed}) == {"persons-0-birth_date": message}


def test_a_birth_date_typed_the_french_way_is_read() -> None:
    data = validate_submission(
        form_to_payload(answers(**{"persons-0-birth_date": "07/03/1950"})), today=TODAY
    )
    assert data.persons[0].birth_date == date(1950, 3, 7)


def test_a_second_person_needs_a_name_and_a_birth_date_and_empty_blocks_are_ignored() -> None:
    assert check(**{"persons-3-first_name": "Léo"}) == {
        "persons-3-last_name": "Indiquez le nom.",
        "persons-3-birth_date": "Indiquez la date de naissance.",
    }


@pytest.mark.parametrize(
    "field",
    ["persons-0-first_name", "persons-0-last_name", "street", "best_time", "language", "comment",
     "reason_detail", "commune", "email", "phone"],
)  # fmt: skip
def test_ten_thousand_character_fields_are_refused_with_a_message(field: str) -> None:
    errors = check(**{field: "a" * 10_000})
    assert "trop long" in errors[field]


def test_missing_consent_and_reason_are_asked_for() -> None:
    assert check(consent=None, reason=None) == {
        "consent": "Votre accord est nécessaire pour que la CPTS traite votre demande.",
        "reason": "Dites-nous pourquoi vous cherchez un médecin traitant.",
    }


SCRIPT = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def lys(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory("CPTS Lys", ["59017", "59431", "59143"])


def test_errors_reshow_everything_typed_and_save_nothing(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    form = answers(
        phone="06 12",
        comment=SCRIPT,
        street=SCRIPT,
        **{"persons-0-birth_date": "2090-01-01", "persons-0-first_name": SCRIPT},
    )
    response = client.post(f"/cpts/{lys.slug}/demande", data=form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert session.scalar(select(func.count()).select_from(Request)) == 0
    # Each error on its field, tied by aria-describedby, and listed in the summary.
    assert 'aria-describedby="phone-hint phone-error" aria-invalid="true"' in html
    assert '<a href="#persons-0-birth_date">' in html
    assert "2 points à corriger" in html
    # What was typed stays, escaped: nothing runs.
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert 'value="2090-01-01"' in html and 'value="06 12"' in html
    assert 'name="consent" value="on" checked' in html


def test_html_is_kept_as_text_and_shown_inert_on_the_private_link(
    client: FlaskClient, lys: Territory
) -> None:
    form = answers(**{"persons-0-first_name": SCRIPT})
    location = client.post(f"/cpts/{lys.slug}/demande", data=form).headers["Location"]
    html = client.get(location.removesuffix("/confirmation")).get_data(as_text=True)
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_the_source_tag_is_kept_to_the_form_of_a_flyer_tag() -> None:
    data = validate_submission(form_to_payload(answers(source_tag="Site Web<b>")), today=TODAY)
    assert data.source_tag == "site-web-b"


def test_at_most_six_persons_per_request() -> None:
    person = {"first_name": "A", "last_name": "B", "birth_date": "2000-01-01"}
    payload = form_to_payload(answers())
    payload["persons"] = [person] * 7
    with pytest.raises(IntakeInvalid) as raised:
        validate_submission(payload, today=TODAY)
    assert raised.value.errors["persons"] == "6 personnes au plus par demande."
