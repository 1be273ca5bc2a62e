"""The JSON API: submit, read one's own request, communes; OpenAPI generated from the code."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import Request, Source, Territory


def payload(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "persons": [{"first_name": "Paul", "last_name": "Dubois", "birth_date": "1950-01-31"}],
        "phone": "+32 470 12 34 56",
        "email": "paul.dubois@example.be",
        "preferred_channel": "email",
        "postal_code": "59280",
        "commune": "Armentieres",
        "reason": "moved",
        "consent": True,
    }
    body.update(changes)
    return body


@pytest.fixture
def lys(make_territory: Callable[..., Territory]) -> Territory:
    return make_territory("CPTS Lys", ["59017", "59431", "59143"])


def test_a_valid_submission_returns_201_with_the_reference_and_the_private_link(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    response = client.post(f"/api/v1/territories/{lys.slug}/requests", json=payload())
    assert response.status_code == 201
    body = response.get_json()
    request = session.scalars(select(Request)).one()
    assert body["reference"] == request.reference
    assert body["status"] == "eligible"
    assert body["private_link"].startswith("http://localhost/suivi/")
    assert request.source is Source.API and request.is_priority  # 76 years old
    assert request.phone == "+32470123456"


def test_invalid_fields_get_422_with_one_french_message_per_field(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    body = payload(
        phone="12", consent=False, persons=[{"first_name": "P", "last_name": "D",
                                             "birth_date": "2999-01-01"}], comment="x" * 10_000,
    )  # fmt: skip
    response = client.post(f"/api/v1/territories/{lys.slug}/requests", json=body)
    assert response.status_code == 422
    assert response.get_json()["errors"] == {
        "phone": "Ce numéro de téléphone n'existe pas : vérifiez les chiffres.",
        "consent": "Votre accord est nécessaire pour que la CPTS traite votre demande.",
        "persons-0-birth_date": "La date de naissance ne peut pas être dans le futur.",
        "comment": "Ce texte est trop long : 2000 caractères au plus.",
    }
    assert session.scalar(select(func.count()).select_from(Request)) == 0


def test_wrong_types_are_422_not_a_crash(client: FlaskClient, lys: Territory) -> None:
    body = payload(persons="Paul", consent="peut-être", phone=42)
    response = client.post(f"/api/v1/territories/{lys.slug}/requests", json=body)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert errors["consent"] == "Répondez par oui ou non."
    assert errors["phone"] == "Saisissez du texte."
    no_json = client.post(f"/api/v1/territories/{lys.slug}/requests", data="x")
    assert no_json.status_code == 422


def test_the_idempotency_key_makes_a_resent_post_return_the_same_request(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    url = f"/api/v1/territories/{lys.slug}/requests"
    first = client.post(url, json=payload(), headers={"Idempotency-Key": "abc-123"})
    second = client.post(url, json=payload(), headers={"Idempotency-Key": "abc-123"})
    assert (first.status_code, second.status_code) == (201, 200)
    # The private links may be signed a second apart: both must open the same request.
    assert first.get_json()["reference"] == second.get_json()["reference"]
    for answer in (first, second):
        token = answer.get_json()["private_link"].rsplit("/", 1)[1]
        opened = client.get(f"/api/v1/requests/{token}").get_json()
        assert opened["reference"] == first.get_json()["reference"]
    assert session.scalar(select(func.count()).select_from(Request)) == 1


def test_a_key_sent_again_with_other_answers_is_refused_without_the_first_request(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    url = f"/api/v1/territories/{lys.slug}/requests"
    first = client.post(url, json=payload(), headers={"Idempotency-Key": "1"})
    other = payload(persons=[{"first_name": "Anne", "last_name": "Roux",
                              "birth_date": "1980-02-02"}])  # fmt: skip
    second = client.post(url, json=other, headers={"Idempotency-Key": "1"})
    assert (first.status_code, second.status_code) == (201, 422)
    assert second.get_json() == {"errors": {"Idempotency-Key": (
        "Cette clé a déjà servi à une demande aux réponses différentes : une clé par demande, "
        "la même seulement pour renvoyer la même demande.")}}  # fmt: skip
    assert first.get_json()["reference"] not in second.get_data(as_text=True)
    # The same answers written another way are the same submission.
    again = client.post(url, json=payload(phone="0032470123456"), headers={"Idempotency-Key": "1"})
    assert again.status_code == 200
    assert again.get_json()["reference"] == first.get_json()["reference"]
    assert session.scalar(select(func.count()).select_from(Request)) == 1


def test_two_cpts_clients_choosing_the_same_key_each_get_their_own_request(
    client: FlaskClient,
    session: Session,
    lys: Territory,
    make_territory: Callable[..., Territory],
) -> None:
    lille = make_territory("CPTS Lille", ["59350"])
    key = {"Idempotency-Key": "k-001"}
    ours = client.post(f"/api/v1/territories/{lys.slug}/requests", json=payload(), headers=key)
    theirs = client.post(
        f"/api/v1/territories/{lille.slug}/requests",
        json=payload(postal_code="59000", commune="Lille"), headers=key,
    )  # fmt: skip
    assert (ours.status_code, theirs.status_code) == (201, 201)
    assert ours.get_json()["reference"] != theirs.get_json()["reference"]
    by_territory = dict(session.execute(select(Request.territory_id, Request.commune_insee)).all())
    assert by_territory == {lys.id: "59017", lille.id: "59350"}


def test_keys_longer_than_255_characters_are_refused_whole_keys_count(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    url = f"/api/v1/territories/{lys.slug}/requests"
    long = client.post(url, json=payload(), headers={"Idempotency-Key": "k" * 256})
    assert long.status_code == 422
    assert long.get_json()["errors"] == {"Idempotency-Key": "255 caractères au plus."}
    # Two keys alike in their first 80 characters are two keys (they used to be cut there).
    a = client.post(url, json=payload(), headers={"Idempotency-Key": "k" * 80 + "a"})
    b = client.post(url, json=payload(), headers={"Idempotency-Key": "k" * 80 + "b"})
    assert (a.status_code, b.status_code) == (201, 201)
    assert session.scalar(select(func.count()).select_from(Request)) == 2


def test_the_private_link_reads_one_request_and_nothing_else(
    client: FlaskClient, lys: Territory
) -> None:
    link = client.post(f"/api/v1/territories/{lys.slug}/requests", json=payload()).get_json()
    token = link["private_link"].rsplit("/", 1)[1]
    body = client.get(f"/api/v1/requests/{token}").get_json()
    assert body["reference"] == link["reference"]
    assert body["commune"] == "Armentières" and body["territory"] == "CPTS Lys"
    assert body["persons"] == [{"first_name": "Paul", "last_name": "Dubois",
                                "birth_date": "1950-01-31"}]  # fmt: skip
    assert client.get(f"/api/v1/requests/{token}x").status_code == 404


def test_unknown_territory_is_404(client: FlaskClient, lys: Territory) -> None:
    assert client.post("/api/v1/territories/nope/requests", json=payload()).status_code == 404


def test_the_communes_of_a_postal_code(client: FlaskClient, lys: Territory) -> None:
    body = client.get("/api/v1/communes?postal_code=59280").get_json()
    assert body == {"communes": [{"insee": "59017", "name": "Armentières"},
                                 {"insee": "59088", "name": "Bois-Grenier"}]}  # fmt: skip


def test_the_openapi_document_describes_the_validation_schema(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    submission = spec["components"]["schemas"]["Submission"]["properties"]
    assert submission["comment"]["maxLength"] == 2000
    assert submission["persons"]["maxItems"] == 6
    assert "/api/v1/territories/{slug}/requests" in spec["paths"]


def test_the_api_needs_no_csrf_token_but_is_rate_limited(
    settings: Any, make_territory: Callable[..., Territory]
) -> None:
    from orientation import create_app

    make_territory("CPTS Lys", ["59017"])
    app = create_app(
        settings.with_overrides(extra={"WTF_CSRF_ENABLED": True, "RATELIMIT_ENABLED": True})
    )
    client = app.test_client()
    statuses = [
        client.post(
            "/api/v1/territories/cpts-lys/requests", json=payload(consent=False)
        ).status_code
        for _ in range(31)
    ]
    app.extensions["orientation.engine"].dispose()
    assert statuses[:30] == [422] * 30  # no CSRF refusal
    assert statuses[30] == 429


def test_an_api_client_over_its_limit_gets_json_and_retry_after(
    settings: Any, lys: Territory
) -> None:
    from orientation import create_app

    app = create_app(settings.with_overrides(extra={"RATELIMIT_ENABLED": True}))
    client = app.test_client()
    responses = [client.get("/api/v1/communes?postal_code=59280") for _ in range(121)]
    app.extensions["orientation.engine"].dispose()
    assert [r.status_code for r in responses] == [200] * 120 + [429]
    assert responses[0].headers["X-RateLimit-Remaining"] == "119"
    refused = responses[-1]
    assert refused.is_json
    assert "Trop de demandes" in refused.get_json()["errors"]["_request"]
    assert int(refused.headers["Retry-After"]) >= 1
    documented = client.get("/api/openapi.json").get_json()["paths"]
    for path, method in (("/api/v1/communes", "get"), ("/api/v1/territories/{slug}/requests",
                         "post"), ("/api/v1/requests/{token}", "get")):  # fmt: skip
        assert "Retry-After" in documented[path][method]["responses"]["429"]["headers"]


def test_the_api_never_answers_with_a_server_error(app: Flask, lys: Territory) -> None:
    """Schemathesis fuzzes every operation of /api/openapi.json (run without its pytest plugin)."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 3
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def fuzz(case: Any) -> None:
            if "slug" in (case.path_parameters or {}):
                case.path_parameters["slug"] = lys.slug  # reach the validation, not only a 404
            case.call_and_validate(checks=[not_a_server_error])

        fuzz()


def test_the_api_answers_its_errors_in_json_not_the_site_s_pages(
    client: FlaskClient, lys: Territory
) -> None:
    unknown = client.get("/api/v1/nothing-here")
    assert (unknown.status_code, unknown.is_json) == (404, True)
    assert unknown.get_json() == {
        "errors": {"_request": "Cette adresse n'existe pas dans l'API : voir /api/openapi.json."}
    }
    wrong_method = client.get(f"/api/v1/territories/{lys.slug}/requests")
    assert (wrong_method.status_code, wrong_method.is_json) == (405, True)
    assert "POST" in wrong_method.headers["Allow"]


def test_a_person_that_is_not_an_object_or_too_many_get_one_french_message(
    client: FlaskClient, lys: Territory
) -> None:
    url = f"/api/v1/territories/{lys.slug}/requests"
    errors = client.post(url, json=payload(persons=["Jean"])).get_json()["errors"]
    assert errors == {
        "persons-0": "Une personne s'écrit comme un objet : prénom, nom, date de naissance."
    }
    person = {"first_name": "A", "last_name": "B", "birth_date": "1950-01-01"}
    errors = client.post(url, json=payload(persons=[person] * 7)).get_json()["errors"]
    assert errors == {"persons": "6 personnes au plus par demande."}


# A value for each answer the OpenAPI document may list as required: should it start requiring
# another, the tests below fail on the missing value (KeyError) until one is given here.
REQUIRED_VALUES: dict[str, Any] = {
    "postal_code": "59850",  # Nieppe, the only commune of its postal code: no commune needed
    "reason": "moved",
    "consent": True,
}
PERSON_VALUES = {"first_name": "Paul", "last_name": "Dubois", "birth_date": "1950-01-31"}
MOBILE = "+33 6 12 34 56 78"  # phone or e-mail, one of them: said in words, not in `required`


def _required(spec: dict[str, Any], schema: str) -> list[str]:
    required: list[str] = spec["components"]["schemas"][schema].get("required", [])
    return required


def _only_required(spec: dict[str, Any]) -> dict[str, Any]:
    """A submission of the fields the document requires and nothing else (but one contact)."""
    person = {name: PERSON_VALUES[name] for name in _required(spec, "Person")}
    values = {**REQUIRED_VALUES, "persons": [person]}
    return {name: values[name] for name in _required(spec, "Submission")} | {"phone": MOBILE}


def _on_field(errors: dict[str, str], field: str) -> bool:
    """Whether every error is keyed on that field (persons-0-first_name is on `persons`)."""
    return bool(errors) and all(key == field or key.startswith(f"{field}-") for key in errors)


def test_the_openapi_document_lists_the_answers_the_validation_requires(
    client: FlaskClient,
) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert _required(spec, "Submission") == ["consent", "persons", "postal_code", "reason"]
    assert _required(spec, "Person") == ["birth_date", "first_name", "last_name"]
    submission = spec["components"]["schemas"]["Submission"]
    properties = submission["properties"]
    # A required answer has no default to fall back on, and only real choices are offered.
    assert not any("default" in properties[name] for name in _required(spec, "Submission"))
    assert properties["consent"]["enum"] == [True]
    assert "" not in properties["reason"]["enum"]
    assert properties["persons"]["minItems"] == 1
    # What JSON Schema cannot say simply is said in words, on the fields and on the whole.
    for contact in ("phone", "email"):
        assert "au moins l'un des deux" in properties[contact]["description"]
    assert "commune_insee" in properties["commune"]["description"]
    assert "plusieurs" in properties["commune"]["description"]
    assert "un téléphone ou une adresse e-mail" in submission["description"]
    assert "vide est ignorée" in spec["components"]["schemas"]["Person"]["description"]


def test_a_submission_of_only_the_required_fields_and_a_phone_is_accepted(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    spec = client.get("/api/openapi.json").get_json()
    response = client.post(f"/api/v1/territories/{lys.slug}/requests", json=_only_required(spec))
    assert response.status_code == 201, response.get_json()
    assert sorted(response.get_json()) == _required(spec, "Created")
    request = session.scalars(select(Request)).one()
    assert (request.commune_insee, request.phone) == ("59431", "+33612345678")


def test_each_field_the_document_requires_missing_alone_is_a_422_on_that_field(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    spec = client.get("/api/openapi.json").get_json()
    url = f"/api/v1/territories/{lys.slug}/requests"
    complete = _only_required(spec)
    missing: dict[str, dict[str, Any]] = {}
    for name in _required(spec, "Submission"):
        missing[name] = {k: v for k, v in complete.items() if k != name}
    for name in _required(spec, "Person"):
        person = {k: v for k, v in complete["persons"][0].items() if k != name}
        missing[f"persons-0-{name}"] = complete | {"persons": [person]}
    assert len(missing) == 7
    for field, body in missing.items():
        response = client.post(url, json=body)
        assert response.status_code == 422, field
        assert sorted(response.get_json()) == _required(spec, "Errors")
        assert _on_field(response.get_json()["errors"], field), (field, response.get_json())
    assert session.scalar(select(func.count()).select_from(Request)) == 0


def test_the_conditional_requirements_the_document_describes_are_the_validation_s(
    client: FlaskClient, session: Session, lys: Territory
) -> None:
    spec = client.get("/api/openapi.json").get_json()
    url = f"/api/v1/territories/{lys.slug}/requests"
    without_contact = {k: v for k, v in _only_required(spec).items() if k != "phone"}
    refused = client.post(url, json=without_contact)
    assert refused.status_code == 422
    assert refused.get_json()["errors"] == {
        "phone": "Indiquez un téléphone ou une adresse e-mail pour que la CPTS vous recontacte."
    }
    by_email = client.post(url, json=without_contact | {"email": "paul@example.fr"})
    assert by_email.status_code == 201
    # 59280 covers Armentières and Bois-Grenier: the commune is needed, by name or INSEE code.
    several = _only_required(spec) | {"postal_code": "59280"}
    no_commune = client.post(url, json=several)
    assert no_commune.status_code == 422
    assert list(no_commune.get_json()["errors"]) == ["commune"]
    by_code = client.post(url, json=several | {"commune_insee": "59017"})
    assert by_code.status_code == 201
    sms_to_a_landline = _only_required(spec) | {
        "phone": "03 20 00 00 00",
        "preferred_channel": "sms",
    }
    assert list(client.post(url, json=sms_to_a_landline).get_json()["errors"]) == [
        "preferred_channel"
    ]
    assert session.scalar(select(func.count()).select_from(Request)) == 2


def test_the_answers_schemas_declare_the_properties_every_answer_has(
    client: FlaskClient, lys: Territory
) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert _required(spec, "Created") == ["private_link", "reference", "status"]
    assert _required(spec, "Errors") == ["errors"]
    assert _required(spec, "Communes") == ["communes"]
    assert _required(spec, "Commune") == ["insee", "name"]
    assert _required(spec, "PersonView") == ["birth_date", "first_name", "last_name"]
    view = spec["components"]["schemas"]["RequestView"]
    assert _required(spec, "RequestView") == sorted(view["properties"])
    created = client.post(f"/api/v1/territories/{lys.slug}/requests", json=payload()).get_json()
    token = created["private_link"].rsplit("/", 1)[1]
    read = client.get(f"/api/v1/requests/{token}").get_json()
    assert sorted(read) == _required(spec, "RequestView")
    assert sorted(read["persons"][0]) == _required(spec, "PersonView")
    communes = client.get("/api/v1/communes?postal_code=59280").get_json()
    assert sorted(communes) == ["communes"]
    assert sorted(communes["communes"][0]) == _required(spec, "Commune")
