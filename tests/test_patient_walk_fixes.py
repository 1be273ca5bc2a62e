"""What a tester walking the product as a patient and as a pharmacist found, and its fixes."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Request, Role, Status, Territory, User
from orientation.links import LinkPurpose, LinkSigner
from orientation.services.intake_validation import (
    IntakeInvalid,
    form_to_payload,
    validate_submission,
)
from tests.conftest import AuthActions
from tests.test_intake import answers

TODAY = date(2026, 11, 23)


def errors_of(about_patient: bool = False, **changes: str) -> dict[str, str]:
    try:
        validate_submission(
            form_to_payload(answers(**changes)), today=TODAY, about_patient=about_patient
        )
    except IntakeInvalid as error:
        return error.errors
    return {}


def text_of(response: object) -> str:
    """The page as a person reads it: entities decoded."""
    return html.unescape(response.get_data(as_text=True))  # type: ignore[attr-defined]


@pytest.fixture
def lys(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory("CPTS Lys", ["59017", "59431", "59143"])


def _token(location: str) -> str:
    return location.split("/")[2]


# --- 1. birth dates ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["12051948", "12/05/1948", "12.05.1948", "12 05 1948", "1948-05-12", "19480512"]
)
def test_a_birth_date_typed_as_digits_only_on_a_phone_keypad_is_read(typed: str) -> None:
    data = validate_submission(
        form_to_payload(answers(**{"persons-0-birth_date": typed})), today=TODAY
    )
    assert data.persons[0].birth_date == date(1948, 5, 12)


@pytest.mark.parametrize("typed", ["31/02/2020", "31022020", "2020-02-31", "12/13/1980"])
def test_a_birth_date_that_does_not_exist_is_called_so_not_unreadable(typed: str) -> None:
    assert errors_of(**{"persons-0-birth_date": typed}) == {
        "persons-0-birth_date": "Cette date n'existe pas : vérifiez le jour et le mois."
    }


def test_an_eight_digit_birth_date_before_1900_is_said_so() -> None:
    assert errors_of(**{"persons-0-birth_date": "12051848"}) == {
        "persons-0-birth_date": "Vérifiez l'année : la date de naissance est avant 1900."
    }


# --- 2. withdrawing asks for a confirmation --------------------------------------------------


def test_withdrawing_needs_the_box_ticked_and_nothing_changes_without_it(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    location = client.post(f"/cpts/{lys.slug}/demande", data=answers()).headers["Location"]
    link = location.removesuffix("/confirmation")
    page = client.get(link).get_data(as_text=True)
    assert 'name="confirm"' in page and 'action="' + link + '/retirer#retirer"' in page
    refused = client.post(f"{link}/retirer")
    assert refused.status_code == 422
    assert "Cochez la case pour confirmer que vous retirez votre demande." in text_of(refused)
    assert 'id="confirm" name="confirm" value="on" aria-describedby="confirm-error"' in (
        refused.get_data(as_text=True)
    )
    request = session.scalars(select(Request)).one()
    assert request.status is Status.ELIGIBLE
    done = client.post(f"{link}/retirer", data={"confirm": "on"})
    assert done.status_code == 303
    session.refresh(request)
    assert request.status is Status.WITHDRAWN


def test_after_withdrawing_the_page_offers_a_new_request_to_the_same_cpts(
    client: FlaskClient, lys: Territory
) -> None:
    location = client.post(f"/cpts/{lys.slug}/demande", data=answers()).headers["Location"]
    link = location.removesuffix("/confirmation")
    page = client.post(f"{link}/retirer", data={"confirm": "on"}, follow_redirects=True)
    text = text_of(page)
    assert "Votre demande est retirée" in text
    assert f'href="/cpts/{lys.slug}/demande"' in text
    assert "Faire une nouvelle demande à CPTS Lys" in text
    assert "Retirer ma demande</button>" not in text  # nothing left to withdraw


# --- 3. the old link of a forwarded request -------------------------------------------------


def test_the_old_link_of_a_forwarded_request_names_the_cpts_and_the_new_reference(
    app: Flask,
    client: FlaskClient,
    session: Session,
    lys: Territory,
    make_territory: Callable[..., Territory],
) -> None:
    lille = make_territory("CPTS Grand Lille", ["59350"])
    location = client.post(
        f"/cpts/{lys.slug}/demande", data=answers(postal_code="59000", commune="Lille")
    ).headers["Location"]
    token = _token(location)
    client.post(f"/suivi/{token}/transmettre/{lille.slug}")
    original, copy = session.scalars(select(Request).order_by(Request.id)).all()
    text = text_of(client.get(f"/suivi/{token}"))
    assert "Transmise à CPTS Grand Lille" in text
    assert "Clôturée" not in text
    assert "Votre demande a été transmise à CPTS Grand Lille" in text
    assert f"utilisez désormais {copy.reference}, et plus celle-ci" in text
    assert lille.contact_phone in text
    # The link to follow it there opens the copy (it also came by SMS from that CPTS).
    new_link = re.search(r'href="/suivi/([^"/]+)">Suivre ma demande auprès de', text)
    assert new_link is not None
    signer = LinkSigner(app.extensions["orientation.settings"].secret_key)
    assert signer.read(LinkPurpose.PATIENT_REQUEST, new_link.group(1)).subject_id == copy.id
    assert copy.reference in text_of(client.get(f"/suivi/{new_link.group(1)}"))


# --- 4. out of territory with a landline and no CPTS: no call promised ----------------------


def test_out_of_territory_with_a_landline_and_no_cpts_promises_no_call(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    landline = answers(
        postal_code="59140", commune="Dunkerque", phone="03 20 12 34 56", preferred_channel=""
    )
    page = client.post(f"/cpts/{lys.slug}/demande", data=landline, follow_redirects=True)
    text = text_of(page)
    assert session.scalars(select(Request)).one().status is Status.OUT_OF_TERRITORY
    assert "Aucune CPTS de ce service ne couvre votre commune" in text
    assert "Sans portable ni e-mail, nous ne pouvons pas vous l'envoyer" in text
    assert "vous appellera" not in text


def test_in_territory_with_a_landline_the_call_is_still_promised(
    client: FlaskClient, lys: Territory
) -> None:
    landline = answers(phone="03 20 12 34 56", preferred_channel="")
    page = client.post(f"/cpts/{lys.slug}/demande", data=landline, follow_redirects=True)
    assert "La coordination vous appellera." in text_of(page)


def test_the_staff_confirmation_out_of_territory_with_no_cpts_sends_to_the_cpam(
    client: FlaskClient, lys: Territory, make_user: Callable[..., User], auth: AuthActions
) -> None:
    auth.login(make_user(lys, Role.REFERRER))
    landline = answers(
        nonce="d1", postal_code="59140", commune="Dunkerque", phone="03 20 12 34 56",
        preferred_channel="",
    )  # fmt: skip
    text = text_of(client.post("/orienter", data=landline))
    assert "Aucune CPTS de ce service ne couvre sa commune" in text and "3646" in text
    assert "appellera" not in text and "recontacte" not in text


# --- 5. reloading the address of a POST-only form -------------------------------------------


def test_reloading_a_private_link_form_address_goes_back_to_the_link_page(
    client: FlaskClient, lys: Territory, make_territory: Callable[..., Territory]
) -> None:
    lille = make_territory("CPTS Grand Lille", ["59350"])
    location = client.post(f"/cpts/{lys.slug}/demande", data=answers()).headers["Location"]
    token = _token(location)
    for action in ("completer", "retirer", f"transmettre/{lille.slug}"):
        reloaded = client.get(f"/suivi/{token}/{action}")
        assert reloaded.status_code == 303, action
        assert reloaded.headers["Location"] == f"/suivi/{token}"


def test_reloading_the_staff_forward_address_goes_back_to_the_request_or_the_form(
    client: FlaskClient,
    session: Session,
    lys: Territory,
    make_user: Callable[..., User],
    auth: AuthActions,
) -> None:
    auth.login(make_user(lys, Role.COORDINATOR))
    client.post("/espace/saisie", data=answers(nonce="c1"))
    request_id = session.scalars(select(Request)).one().id
    reloaded = client.get(f"/orienter/{request_id}/transmettre/ailleurs")
    assert reloaded.status_code == 303
    assert reloaded.headers["Location"] == f"/espace/demandes/{request_id}"
    assert client.get(reloaded.headers["Location"]).status_code == 200
    auth.logout()
    auth.login(make_user(lys, Role.REFERRER))
    reloaded = client.get(f"/orienter/{request_id}/transmettre/ailleurs")
    assert (reloaded.status_code, reloaded.headers["Location"]) == (303, "/orienter")


# --- 6. postal codes outside the Hauts-de-France ---------------------------------------------


@pytest.mark.parametrize("postal_code", ["75001", "13001", "97400"])
def test_a_french_postal_code_outside_the_region_gets_the_national_guidance(
    postal_code: str,
) -> None:
    message = errors_of(postal_code=postal_code, commune="")["postal_code"]
    assert "n'est pas dans les Hauts-de-France" in message and "vérifiez-le" in message
    assert "CPAM" in message and "ameli.fr" in message and "3646" in message


@pytest.mark.parametrize("postal_code", ["59999", "99999"])
def test_an_unknown_postal_code_of_the_region_or_of_nowhere_is_a_typo_to_check(
    postal_code: str,
) -> None:
    assert errors_of(postal_code=postal_code) == {
        "postal_code": "Nous ne connaissons pas ce code postal : vérifiez-le."
    }


# --- 7. the error summary --------------------------------------------------------------------


def test_the_error_summary_says_which_person_an_error_belongs_to(
    client: FlaskClient, lys: Territory
) -> None:
    form = answers(
        **{
            "persons-1-first_name": "Léo",
            "persons-1-last_name": "Martin",
            "persons-1-birth_date": "2090-01-01",
        }
    )
    text = text_of(client.post(f"/cpts/{lys.slug}/demande", data=form))
    assert (
        '<a href="#persons-1-birth_date">Personne 2 — Date de naissance : '
        "La date de naissance ne peut pas être dans le futur.</a>"
    ) in text


def test_a_commune_not_of_the_postal_code_says_to_choose_or_check_the_code() -> None:
    assert errors_of(commune="Lille")["commune"] == (
        "« Lille » n'est pas une commune du code postal 59280 : choisissez-la dans la liste, "
        "ou vérifiez le code postal."
    )


# --- 8. the staff forms speak of the patient -------------------------------------------------

PUBLIC_HEADINGS = ("Comment vous recontacter", "Votre adresse", "Pourquoi cherchez-vous")
STAFF_HEADINGS = (
    "Comment recontacter le patient",
    "Adresse du patient",
    "Pourquoi le patient cherche-t-il un médecin traitant ?",
)


@pytest.mark.parametrize("url", ["/orienter", "/espace/saisie"])
def test_the_staff_forms_speak_of_the_patient(
    client: FlaskClient,
    lys: Territory,
    make_user: Callable[..., User],
    auth: AuthActions,
    url: str,
) -> None:
    auth.login(make_user(lys, Role.COORDINATOR))
    page = text_of(client.get(url))
    assert all(heading in page for heading in STAFF_HEADINGS)
    assert not any(heading in page for heading in PUBLIC_HEADINGS)
    refused = client.post(url, data=answers(consent=None, reason=None, phone=""))
    assert refused.status_code == 422
    text = text_of(refused)
    assert "L'accord du patient est nécessaire pour que la CPTS traite sa demande." in text
    assert "Indiquez pourquoi le patient cherche un médecin traitant." in text
    assert "pour que la CPTS recontacte le patient." in text
    assert "Votre accord" not in text and all(heading in text for heading in STAFF_HEADINGS)


def test_the_public_questionnaire_still_speaks_to_the_person(
    client: FlaskClient, lys: Territory
) -> None:
    page = text_of(client.get(f"/cpts/{lys.slug}/demande"))
    assert all(heading in page for heading in PUBLIC_HEADINGS)
    assert not any(heading in page for heading in STAFF_HEADINGS)
    refused = text_of(client.post(f"/cpts/{lys.slug}/demande", data=answers(consent=None)))
    assert "Votre accord est nécessaire pour que la CPTS traite votre demande." in refused


def test_the_api_keeps_the_messages_of_the_person(client: FlaskClient, lys: Territory) -> None:
    body = {**form_to_payload(answers()), "consent": False}
    response = client.post(f"/api/v1/territories/{lys.slug}/requests", json=body)
    assert response.status_code == 422
    assert response.get_json()["errors"]["consent"] == (
        "Votre accord est nécessaire pour que la CPTS traite votre demande."
    )
