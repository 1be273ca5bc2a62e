"""Security headers on every response."""

from __future__ import annotations

from flask import Flask, Response, abort, request

# No inline script or style anywhere: the templates load /static files only.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: https://tile.openstreetmap.org",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

# Endpoints whose responses hold nothing personal and may be cached: the app's own static files,
# the vendored front-end packages and the API's description. Every other response says
# no-store, so a new route carrying patient or staff data cannot forget it.
CACHEABLE_ENDPOINTS = frozenset({"static", "vendor.leaflet", "api.openapi"})

SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "same-origin"),
    ("Permissions-Policy", "geolocation=(), camera=(), microphone=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def _has_nul_byte() -> bool:
    if "\x00" in request.path:
        return True
    for source in (request.args, request.form):
        for _key, values in source.lists():
            if "\x00" in _key or any("\x00" in value for value in values):
                return True
    return False


def init_app(app: Flask) -> None:
    @app.before_request
    def _refuse_nul_bytes() -> None:
        # Nobody types a NUL byte; PostgreSQL refuses them in text (a 500 deep in a view), and
        # some tools truncate strings at them. Refuse the whole request up front.
        if _has_nul_byte():
            abort(400)

    @app.after_request
    def _headers(response: Response) -> Response:
        headers = response.headers
        # One pass over the response's headers, then one extend: cheaper on every response
        # than a setdefault per header (each one a case-insensitive scan of the list).
        present = {key.lower() for key, _ in headers}
        wanted = list(SECURITY_HEADERS)
        if request.is_secure:
            wanted.append(("Strict-Transport-Security", "max-age=31536000; includeSubDomains"))
        if request.endpoint not in CACHEABLE_ENDPOINTS:
            # Pages, JSON and files may hold personal data: never keep them in any cache. A
            # response that set its own Cache-Control keeps it.
            wanted.append(("Cache-Control", "no-store"))
        headers.extend([(key, value) for key, value in wanted if key.lower() not in present])
        return response
