"""Flyers for coordinators and CPTS admins: choose a source tag and a format, print or download."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, render_template, request
from flask.typing import ResponseReturnValue

from models import Role
from orientation.auth import staff_required
from orientation.blueprints.intake_common import settings
from orientation.services.flyers import (
    PAGE_SIZES,
    SOURCE_TAGS,
    FlyerError,
    clean_tag,
    flyer_file,
    flyer_text,
    qr_png,
    qr_svg,
    questionnaire_url,
)

bp = Blueprint("flyers", __name__, url_prefix="/espace/flyers")
STAFF = (Role.COORDINATOR, Role.CPTS_ADMIN)


def _choice() -> tuple[str, str, str]:
    """(tag, page format, url) from the query string; 404 on nonsense."""
    try:
        tag = clean_tag(request.args.get("source", ""))
    except FlyerError:
        abort(404)
    page = request.args.get("format", "A4")
    if page not in PAGE_SIZES:
        abort(404)
    return tag, page, questionnaire_url(settings().base_url, g.territory.slug, tag)


@bp.get("/")
@staff_required(*STAFF)
def index() -> ResponseReturnValue:
    return render_template("flyers/index.html", territory=g.territory, tags=SOURCE_TAGS,
                           formats=list(PAGE_SIZES))  # fmt: skip


@bp.get("/imprimer")
@staff_required(*STAFF)
def printable() -> ResponseReturnValue:
    tag, page, url = _choice()
    return render_template("flyers/print.html", territory=g.territory, tag=tag, page=page,
                           url=url, text=flyer_text(g.territory))  # fmt: skip


@bp.get("/qr.svg")
@staff_required(*STAFF)
def svg() -> ResponseReturnValue:
    _tag, _page, url = _choice()
    return Response(qr_svg(url), mimetype="image/svg+xml")


@bp.get("/qr.png")
@staff_required(*STAFF)
def png() -> ResponseReturnValue:
    _tag, _page, url = _choice()
    return Response(qr_png(url), mimetype="image/png")


@bp.get("/flyer.<kind>")
@staff_required(*STAFF)
def download(kind: str) -> ResponseReturnValue:
    tag, page, url = _choice()
    try:
        body = flyer_file(g.territory, url, page, kind)
    except FlyerError:
        abort(404)
    name = f"flyer-{g.territory.slug}-{tag}-{page}.{kind}"
    return Response(body, mimetype="application/pdf" if kind == "pdf" else "image/png",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
