"""Front-end packages served from node_modules (installed by `npm ci`), never from a CDN."""

from __future__ import annotations

from flask import Blueprint, abort, send_from_directory
from flask.typing import ResponseReturnValue

from orientation import PROJECT_ROOT

bp = Blueprint("vendor", __name__, url_prefix="/vendor")
# Only Leaflet's built files: nothing else under node_modules is reachable.
LEAFLET_DIST = PROJECT_ROOT / "node_modules" / "leaflet" / "dist"


@bp.get("/leaflet/<path:filename>")
def leaflet(filename: str) -> ResponseReturnValue:
    if not LEAFLET_DIST.is_dir():
        abort(404)
    # send_from_directory refuses paths that leave the folder (.., absolute paths).
    return send_from_directory(LEAFLET_DIST, filename, max_age=86400)
