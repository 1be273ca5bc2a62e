"""JSON API for professional software: submit a request, read one's own, the communes of a CP.

The OpenAPI 3 document is generated from the marshmallow schemas that validate submissions
(apispec), so the description cannot drift from what the server accepts: their `required` lists
too, from the fields the validation marks as needed. The API has no cookie session, hence no
CSRF; it is rate-limited per client address instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin, OpenAPIConverter
from flask import Blueprint, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from marshmallow import Schema, fields

from geo.communes import gazetteer
from models import Source, Territory
from orientation.blueprints.intake_common import intake_territory, settings, signer, submit
from orientation.db import db_session
from orientation.extensions import csrf, limiter
from orientation.links import LinkExpired, LinkInvalid
from orientation.services.intake import SubmissionKeyReused
from orientation.services.intake_validation import (
    NEEDED,
    IntakeInvalid,
    SpamSuspected,
    SubmissionSchema,
)
from orientation.services.patient_link import audit_read, request_of_token

bp = Blueprint("api", __name__, url_prefix="/api")
csrf.exempt(bp)

API_LIMIT = "30 per minute;300 per hour"


# The answers' schemas (they only dump): `required` marks what every answer carries.
class CreatedSchema(Schema):
    reference = fields.String(required=True, metadata={"example": "K7QM-4T2X"})
    status = fields.String(required=True, metadata={"enum": ["eligible", "out_of_territory"]})
    private_link = fields.String(
        required=True, metadata={"description": "Lien privé de suivi (signé)"}
    )


class ErrorsSchema(Schema):
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={
            "description": "Un message en français par champ invalide, sous le nom du champ "
            "(persons-0-birth_date pour la date de naissance de la première personne)"
        },
    )


class PersonViewSchema(Schema):
    first_name = fields.String(required=True)
    last_name = fields.String(required=True)
    birth_date = fields.Date(required=True, allow_none=True)


class RequestViewSchema(Schema):
    reference = fields.String(required=True)
    status = fields.String(required=True)
    territory = fields.String(required=True)
    commune = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    persons = fields.List(fields.Nested(PersonViewSchema), required=True)


class CommuneSchema(Schema):
    insee = fields.String(required=True)
    name = fields.String(required=True)


class CommunesSchema(Schema):
    communes = fields.List(fields.Nested(CommuneSchema), required=True)


class _Converter(OpenAPIConverter):
    """apispec's converter, with the fields the validation marks as needed in `required`."""

    def fields2jsonschema(
        self, fields: Mapping[str, Any], *, partial: bool | Sequence[str] | None = None
    ) -> dict[str, Any]:
        jsonschema: dict[str, Any] = super().fields2jsonschema(fields, partial=partial)
        needed = {f.data_key or name for name, f in fields.items() if f.metadata.get(NEEDED)}
        for name in needed:
            # The blank default stands for a missing answer, which the validation refuses.
            jsonschema["properties"][name].pop("default", None)
        if needed:
            jsonschema["required"] = sorted(needed.union(jsonschema.get("required", [])))
        return jsonschema


class _Plugin(MarshmallowPlugin):
    Converter = _Converter


IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEY_REUSED = (
    "Cette clé a déjà servi à une demande aux réponses différentes : une clé par demande, "
    "la même seulement pour renvoyer la même demande."
)


def _errors(errors: dict[str, str], status: int = 422) -> ResponseReturnValue:
    return jsonify(errors=errors), status


@bp.post("/v1/territories/<slug>/requests")
@limiter.limit(API_LIMIT)
def create_request(slug: str) -> ResponseReturnValue:
    # What a submission needs of the CPTS in one query, as the questionnaire reads it.
    territory = intake_territory(slug)
    if territory is None:
        return _errors({"slug": "Aucune CPTS ne porte ce nom sur ce service."}, 404)
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return _errors({"_body": "Envoyez un objet JSON (Content-Type: application/json)."})
    key = request.headers.get(IDEMPOTENCY_KEY, "")
    if len(key) > MAX_KEY_LENGTH:
        return _errors({IDEMPOTENCY_KEY: f"{MAX_KEY_LENGTH} caractères au plus."})
    try:
        result = submit(db_session(), territory, payload, source=Source.API, submission_key=key)
    except IntakeInvalid as error:
        return _errors(error.errors)
    except SpamSuspected:
        return _errors({"website": "Ce champ doit rester vide."})
    except SubmissionKeyReused:
        return _errors({IDEMPOTENCY_KEY: KEY_REUSED})
    body = {
        "reference": result.reference,
        "status": result.status.value,
        "private_link": f"{settings().base_url}/suivi/{result.token}",
    }
    return jsonify(body), 201 if result.created else 200


@bp.get("/v1/requests/<token>")
@limiter.limit(API_LIMIT)
def read_request(token: str) -> ResponseReturnValue:
    try:
        req = request_of_token(db_session(), signer(), token)
    except LinkExpired:
        return _errors({"token": "Ce lien a expiré."}, 410)
    except LinkInvalid:
        return _errors({"token": "Lien inconnu."}, 404)
    territory = db_session().get(Territory, req.territory_id)
    commune = gazetteer().get(req.commune_insee)
    body = RequestViewSchema().dump(
        {
            "reference": req.reference,
            "status": req.status.value,
            "territory": territory.name if territory else "",
            "commune": commune.name if commune else req.postal_code,
            "created_at": req.created_at,
            "persons": req.persons,
        }
    )
    audit_read(db_session(), req, request.remote_addr or "")
    return jsonify(body)


@bp.get("/v1/communes")
@limiter.limit("120 per minute")
def communes() -> ResponseReturnValue:
    code = request.args.get("postal_code", "").strip()[:5]
    found = gazetteer().communes_of_postal_code(code) if code.isdigit() else []
    return jsonify(communes=[{"insee": c.insee, "name": c.name} for c in found])


def build_spec(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3 document, from the schemas above and the validation schema."""
    spec = APISpec(
        title="Orientation API",
        version="1",
        openapi_version="3.0.3",
        plugins=[_Plugin()],
        info={"description": "Demandes de médecin traitant adressées à une CPTS."},
        servers=[{"url": server_url}],
    )
    for name, schema in (
        ("Submission", SubmissionSchema),
        ("Created", CreatedSchema),
        ("Errors", ErrorsSchema),
        ("RequestView", RequestViewSchema),
        ("Communes", CommunesSchema),
    ):
        spec.components.schema(name, schema=schema)
    json_of = lambda ref: {"application/json": {"schema": ref}}  # noqa: E731
    too_many = {
        "description": "Trop de demandes depuis cette adresse",
        "headers": {
            "Retry-After": {
                "description": "Secondes à attendre avant de réessayer",
                "schema": {"type": "integer"},
            }
        },
        "content": json_of("Errors"),
    }
    spec.path(
        path="/api/v1/territories/{slug}/requests",
        operations={
            "post": {
                "summary": "Déposer une demande (même validation que le questionnaire)",
                "parameters": [
                    {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}},
                    {
                        "name": IDEMPOTENCY_KEY,
                        "in": "header",
                        "required": False,
                        "description": "Sent again with the same answers, the same request "
                        "(200); with other answers, 422. Keys are per CPTS.",
                        "schema": {"type": "string", "maxLength": MAX_KEY_LENGTH},
                    },
                ],
                "requestBody": {"required": True, "content": json_of("Submission")},
                "responses": {
                    "201": {"description": "Demande créée", "content": json_of("Created")},
                    "200": {
                        "description": "Déjà reçue (même clé, mêmes réponses)",
                        "content": json_of("Created"),
                    },
                    "404": {"description": "CPTS inconnue", "content": json_of("Errors")},
                    "422": {
                        "description": "Champs invalides, ou clé déjà servie à d'autres réponses",
                        "content": json_of("Errors"),
                    },
                    "429": too_many,
                },
            }
        },
    )
    spec.path(
        path="/api/v1/requests/{token}",
        operations={
            "get": {
                "summary": "Lire sa demande avec son lien privé",
                "parameters": [
                    {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "La demande", "content": json_of("RequestView")},
                    "404": {"description": "Lien inconnu", "content": json_of("Errors")},
                    "410": {"description": "Lien expiré", "content": json_of("Errors")},
                    "429": too_many,
                },
            }
        },
    )
    spec.path(
        path="/api/v1/communes",
        operations={
            "get": {
                "summary": "Les communes d'un code postal",
                "parameters": [
                    {
                        "name": "postal_code",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {"description": "Communes", "content": json_of("Communes")},
                    "429": too_many,
                },
            }
        },
    )
    result: dict[str, Any] = spec.to_dict()
    return result


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(build_spec(url_for("public.home", _external=True).rstrip("/")))
