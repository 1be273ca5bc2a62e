"""Flask's signed-cookie session, with its serializer built once rather than on every request.

Flask builds a new itsdangerous serializer for each request that opens or saves the session
(every page: the CSRF token lives in the session), and building one serialises a probe value
to learn whether the serializer speaks text. The cookie, its signature and its lifetime are
Flask's own; only the building is kept, per secret key.
"""

from __future__ import annotations

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer


class CookieSessionInterface(SecureCookieSessionInterface):
    """SecureCookieSessionInterface whose serializer is built once per set of keys."""

    def __init__(self) -> None:
        self._serializers: dict[tuple[str | bytes, ...], URLSafeTimedSerializer] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        if not app.secret_key:
            return None
        # Keyed on the keys themselves, so that a changed key or fallback is never signed with
        # the serializer of the old one.
        keys = (*(app.config["SECRET_KEY_FALLBACKS"] or ()), app.secret_key)
        serializer = self._serializers.get(keys)
        if serializer is None:
            serializer = super().get_signing_serializer(app)
            assert serializer is not None  # a secret key is set
            self._serializers[keys] = serializer
        return serializer
