"""Staff reports: exports of requests and messages, and the indicators page (with JSON and CSV).

Both are reads: they use GET (bookmarkable, no CSRF needed) and are audited.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from functools import wraps
from typing import IO, Any, TypeVar, cast

from flask import (
    Blueprint,
    Response,
    abort,
    g,
    jsonify,
    render_template,
    request,
    stream_with_context,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import DateField, SelectField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from geo.communes import gazetteer
from models import Role, Source, Status, Territory, utcnow
from orientation.auth import Staff, staff_required
from orientation.db import db_session
from orientation.labels import SOURCE_LABELS, STATUS_LABELS
from orientation.services import exports, indicators
from orientation.services.audit import record
from orientation.services.indicators import Period, PeriodError
from orientation.services.territories import communes_by_name

bp = Blueprint("reports", __name__, url_prefix="/espace")
F = TypeVar("F", bound=Callable[..., Any])
EXPORT_ROLES = (Role.COORDINATOR, Role.CPTS_ADMIN)


def _choices(pairs: list[tuple[str, str]]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class PeriodForm(FlaskForm):
    class Meta:
        csrf = False  # a GET that reads: nothing to forge

    du = DateField("Du", validators=[Optional()])
    au = DateField("Au", validators=[Optional()])

    def period(self) -> Period | None:
        """The period, or None with the error set on the right field."""
        try:
            return Period.parse(self.du.data, self.au.data)
        except PeriodError as exc:
            field = self.au if self.du.data and self.au.data else self.du
            field.errors = [*field.errors, str(exc)]
            return None


class ExportForm(PeriodForm):
    type = SelectField(
        "Contenu",
        choices=_choices(
            [
                (exports.ExportKind.REQUESTS.value, "Demandes (identités comprises)"),
                (
                    exports.ExportKind.PSEUDONYMISED.value,
                    "Demandes pseudonymisées (pour partenaires)",
                ),
                (exports.ExportKind.MESSAGES.value, "Journal des messages (sans contenu)"),
            ]
        ),
        default=exports.ExportKind.REQUESTS.value,
    )
    format = SelectField(
        "Format",
        choices=_choices([("csv", "CSV (Excel, LibreOffice)"), ("xlsx", "XLSX (Excel)")]),
        default="csv",
    )
    statut = SelectMultipleField(
        "Statuts",
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        choices=_choices([(s.value, str(STATUS_LABELS[s])) for s in Status]),
    )
    source = SelectMultipleField(
        "Sources",
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        choices=_choices([(s.value, str(SOURCE_LABELS[s])) for s in Source]),
    )
    commune = SelectField("Commune", choices=_choices([("", "Toutes")]), default="")
    priorite = SelectField(
        "Priorité",
        choices=_choices(
            [
                ("", "Toutes"),
                ("priority", "Prioritaires"),
                ("not_priority", "Non prioritaires"),
            ]
        ),
        default="",
    )


def _export_form(territory: Territory) -> ExportForm:
    form = ExportForm(request.args)
    form.commune.choices = _choices([("", "Toutes"), *communes_by_name(gazetteer(), territory)])
    return form


def _filters(form: ExportForm, period: Period) -> exports.ExportFilter:
    return exports.ExportFilter(
        start=period.start,
        end=period.end,
        statuses=[Status(s) for s in form.statut.data or []],
        sources=[Source(s) for s in form.source.data or []],
        commune_insee=form.commune.data or "",
        priority=exports.PriorityFilter(form.priorite.data or ""),
    )


@bp.get("/exports")
@staff_required(*EXPORT_ROLES)
def exports_page() -> ResponseReturnValue:
    form = _export_form(g.territory)
    matching: int | None = None
    left_out = 0  # requests of the period whose processing is limited: not exported
    if request.args and form.validate():
        period = form.period()
        if period is not None:
            kind = exports.ExportKind(form.type.data)
            if kind is exports.ExportKind.MESSAGES:
                matching = exports.count_messages(
                    g.session, [g.territory.id], period.start, period.end
                )
            else:
                filters = _filters(form, period)
                matching = exports.count_requests(g.session, [g.territory.id], filters)
                left_out = exports.count_limited(g.session, [g.territory.id], filters)
    year = utcnow().year
    this_year = {"du": f"{year}-01-01", "au": f"{year}-12-31"}
    return render_template(
        "reports/exports.html",
        form=form,
        matching=matching,
        left_out=left_out,
        this_year=this_year,
        year=year,
    )


@bp.get("/exports/telecharger")
@staff_required(*EXPORT_ROLES)
def exports_download() -> ResponseReturnValue:
    form = _export_form(g.territory)
    period = form.period() if form.validate() else None
    if period is None:
        year = utcnow().year
        this_year = {"du": f"{year}-01-01", "au": f"{year}-12-31"}
        return render_template(
            "reports/exports.html", form=form, matching=None, this_year=this_year, year=year
        ), 400
    kind = exports.ExportKind(form.type.data)
    fmt = exports.ExportFormat(form.format.data)
    ids = [g.territory.id]
    if kind is exports.ExportKind.MESSAGES:
        count = exports.count_messages(g.session, ids, period.start, period.end)
        rows: Iterable[list[object]] = exports.message_rows(
            g.session, ids, period.start, period.end
        )
        details: dict[str, Any] = {"start": period.start.isoformat(), "end": period.end.isoformat()}
    else:
        filters = _filters(form, period)
        count = exports.count_requests(g.session, ids, filters)
        rows = exports.request_rows(
            g.session, ids, filters, pseudonymised=kind is exports.ExportKind.PSEUDONYMISED
        )
        details = {
            **filters.describe(),
            "left_out_limited": exports.count_limited(g.session, ids, filters),
        }
    # Audited before the first byte leaves: an interrupted download was still a disclosure.
    exports.audit_export(
        g.session, kind=kind, fmt=fmt, territory_id=g.territory.id, user_id=g.user.id,
        rows=count, filter_details=details, ip=request.remote_addr or "", now=utcnow(),
    )  # fmt: skip
    name = f"orientation-{kind.value}-{period.first:%Y%m%d}-{period.last:%Y%m%d}.{fmt.value}"
    if fmt is exports.ExportFormat.CSV:
        return Response(
            stream_with_context(_then_end_transaction(exports.csv_chunks(rows), g.session)),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    # openpyxl assembles the zip at the end: rows go to a temporary file, then it is sent.
    target = tempfile.TemporaryFile(suffix=".xlsx")  # noqa: SIM115 - closed by _file_chunks
    exports.write_xlsx(rows, target, title=kind.value)
    target.seek(0)
    return Response(
        _file_chunks(target),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _then_end_transaction(chunks: Iterator[bytes], session: Session) -> Iterator[bytes]:
    """Stream, then end the read transaction at once (not when the server closes the response)."""
    try:
        yield from chunks
    finally:
        session.rollback()


def _file_chunks(file: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := file.read(64 * 1024):
            yield chunk
    finally:
        file.close()


def reports_access(view: F) -> F:
    """Coordinators and CPTS admins see their CPTS; an instance admin may see every CPTS."""

    @wraps(view)
    @login_required
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = cast(Staff, current_user._get_current_object()).user
        if user.role is Role.ADMIN:
            g.user = user
            g.session = db_session()
            g.territory = None
            return view(*args, **kwargs)
        return staff_required(*EXPORT_ROLES)(view)(*args, **kwargs)

    return cast(F, wrapper)


def _period_form() -> PeriodForm:
    """The period asked in the query string; this calendar year by default."""
    args = request.args.to_dict()
    today = utcnow().date()
    args.setdefault("du", date(today.year, 1, 1).isoformat())
    args.setdefault("au", date(today.year, 12, 31).isoformat())
    return PeriodForm(data=None, formdata=_MultiDict(args))


def _indicators() -> tuple[PeriodForm, indicators.Indicators | None, list[Territory]]:
    form = _period_form()
    choices: list[Territory] = (
        list(g.session.scalars(select(Territory).order_by(Territory.name)))
        if g.territory is None
        else [g.territory]
    )
    chosen = choices
    if g.territory is None and request.args.get("cpts", "").isdigit():
        chosen = [t for t in choices if t.id == int(request.args["cpts"])] or abort(404)
    period = form.period() if form.validate() else None
    if period is None:
        return form, None, choices
    figures = indicators.compute(g.session, chosen, period, utcnow())
    record(
        g.session, "indicators", territory_id=g.territory.id if g.territory else None,
        user_id=g.user.id, first=period.first.isoformat(), last=period.last.isoformat(),
    )  # fmt: skip
    g.session.commit()
    return form, figures, choices


class _MultiDict(dict[str, str]):
    """The minimal formdata WTForms needs (getlist), over a plain dict with defaults."""

    def getlist(self, key: str) -> list[str]:
        return [self[key]] if key in self else []


@bp.get("/indicateurs")
@reports_access
def indicators_page() -> ResponseReturnValue:
    form, figures, choices = _indicators()
    return render_template(
        "reports/indicators.html",
        form=form,
        figures=figures,
        charts=_charts(figures) if figures else {},
        territories=choices,
        cpts=request.args.get("cpts", ""),
        query=request.query_string.decode(),
        # The survey's comments are read by the CPTS's own staff only, never across CPTS.
        comments_link=g.territory is not None,
    ), (200 if figures else 400)


@bp.get("/indicateurs/commentaires")
@staff_required(*EXPORT_ROLES)
def survey_comments_page() -> ResponseReturnValue:
    """The survey's free comments of the period, for the coordinators and CPTS admins of this
    CPTS only: the text and the year, nothing that leads back to a patient. Audited, as the
    indicators are."""
    form = _period_form()
    period = form.period() if form.validate() else None
    comments: list[indicators.SurveyComment] = []
    if period is not None:
        comments = indicators.survey_comments(g.session, g.territory.id, period)
        record(
            g.session, "survey_comments", territory_id=g.territory.id, user_id=g.user.id,
            first=period.first.isoformat(), last=period.last.isoformat(), count=len(comments),
        )  # fmt: skip
        g.session.commit()
    return render_template(
        "reports/survey_comments.html",
        form=form,
        period=period,
        comments=comments,
        query=request.query_string.decode(),
    ), (200 if period else 400)


def _charts(figures: indicators.Indicators) -> dict[str, list[tuple[str, int]]]:
    """Figures as (French label, value) pairs for the bar-chart macro."""
    return {
        "by_source": [(str(SOURCE_LABELS[Source(k)]), v) for k, v in figures.by_source.items()],
        "by_month": [(f"{m[5:]}/{m[:4]}", v) for m, v in figures.by_month.items()],
        "satisfaction": [(f"{k} sur 5", v) for k, v in sorted(figures.survey.by_score.items())],
    }


@bp.get("/indicateurs.json")
@reports_access
def indicators_json() -> ResponseReturnValue:
    form, figures, _ = _indicators()
    if figures is None:
        return jsonify(errors={k: v for k, v in form.errors.items()}), 400
    return jsonify(figures.as_dict())


@bp.get("/indicateurs.csv")
@reports_access
def indicators_csv() -> ResponseReturnValue:
    form, figures, _ = _indicators()
    if figures is None:
        return jsonify(errors={k: v for k, v in form.errors.items()}), 400
    rows: Iterator[list[object]] = iter([["indicateur", "valeur"], *map(list, figures.as_rows())])
    return Response(
        b"".join(exports.csv_chunks(rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": 'attachment; filename="indicateurs.csv"'},
    )
