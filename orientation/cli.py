"""The `orientation` command (also `flask --app orientation ...`): init, territory, demo, serve."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext
from sqlalchemy.orm import Session

from geo.communes import ReferenceDataError, gazetteer
from models import utcnow
from models.migrate import is_up_to_date, load_communes, upgrade
from orientation.config import ConfigError
from orientation.db import engine, session_factory


def register(app: Flask) -> None:
    for command in (
        init_command,
        territory_group,
        demo_command,
        serve_command,
        cascade_command,
        doctors_group,
        dispatch_command,
        purge_command,
        followup_group,
        survey_group,
        admin_group,
    ):
        app.cli.add_command(command)


def _session() -> Session:
    return session_factory()()


def _initialise() -> int:
    upgrade(engine())
    try:
        records = list(gazetteer().by_insee.values())
    except ReferenceDataError as exc:
        raise click.ClickException(f"The reference geography is unusable: {exc}.") from None
    return load_communes(engine(), records)


@click.command("init")
@with_appcontext
def init_command() -> None:
    """Create or upgrade the database and load the reference communes."""
    count = _initialise()
    click.echo(f"Database ready ({engine().url.get_backend_name()}), {count} communes loaded.")


@click.group("territory")
def territory_group() -> None:
    """Manage the CPTS hosted on this instance."""


@territory_group.command("add")
@click.argument("name")
@click.option("--communes", "inline", default="", help="INSEE codes, e.g. '59017,59431'.")
@click.option(
    "--communes-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV file of INSEE codes (column 'insee', or one code per line).",
)
@click.option("--slug", default="", help="Used in links and QR codes; derived from the name.")
@click.option("--phone", default="", help="The coordination's phone number.")
@click.option("--email", default="", help="The coordination's e-mail address.")
@click.option("--dpo", default="", help="How to reach the data protection officer.")
@with_appcontext
def territory_add(
    name: str, inline: str, communes_file: Path | None, slug: str, phone: str, email: str, dpo: str
) -> None:
    """Add a CPTS from its name and its communes."""
    from orientation.services.territories import (
        TerritoryError,
        TerritoryInput,
        UnknownCommunes,
        add_territory,
        parse_insee_codes,
    )

    codes = parse_insee_codes(inline)
    if communes_file is not None:
        codes += parse_insee_codes(communes_file.read_text(encoding="utf-8-sig"))
    session = _session()
    try:
        territory = add_territory(
            session,
            gazetteer(),
            TerritoryInput(
                name=name,
                insee_codes=codes,
                slug=slug,
                contact_phone=phone,
                contact_email=email,
                dpo_contact=dpo,
            ),
        )
        session.commit()
    except UnknownCommunes as exc:
        session.rollback()
        raise click.ClickException(
            f"Unknown INSEE code(s), nothing was created: {', '.join(exc.codes)} "
            "(the shipped reference covers the communes of Hauts-de-France)."
        ) from None
    except TerritoryError as exc:
        session.rollback()
        raise click.ClickException(f"Nothing was created: {exc}.") from None
    finally:
        session.close()
    click.echo(f"Added {territory.name} (slug {territory.slug}) with {len(codes)} communes.")


@click.group("admin")
def admin_group() -> None:
    """Accounts of the instance's administrators."""


@admin_group.command("create")
@click.argument("email")
@click.option("--name", "full_name", required=True, help="Full name, shown in the audit log.")
@click.password_option(help="Asked twice, hidden (or read from standard input).")
@with_appcontext
def admin_create(email: str, full_name: str, password: str) -> None:
    """Create an instance administrator: the first account of a new instance, who then adds
    each CPTS's administrators at /admin."""
    from orientation.services.accounts import PasswordTooWeak
    from orientation.services.staff import EmailTaken, create_instance_admin

    session = _session()
    try:
        create_instance_admin(session, email, full_name, password)
        session.commit()
    except EmailTaken:
        raise click.ClickException(f"An account already uses {email}.") from None
    except PasswordTooWeak as exc:
        # The rule's own words (accounts.check_password_policy), in a sentence saying what to do.
        raise click.ClickException(
            f"Mot de passe refusé : il ne respecte pas la règle « {exc} ». Aucun compte n'a été "
            "créé : relancez la commande avec un autre mot de passe."
        ) from None
    finally:
        session.close()
    click.echo(f"Instance administrator {email} created: log in at /connexion, then /admin.")


@click.command("demo")
@with_appcontext
def demo_command() -> None:
    """Initialise the database and create the demo CPTS (again: reset the demo passwords)."""
    from orientation.services.demo import seed_demo

    _initialise()
    session = _session()
    try:
        logins = seed_demo(session, gazetteer(), utcnow())
        session.commit()
    finally:
        session.close()
    base_url = current_app.extensions["orientation.settings"].base_url
    click.echo(f"Demo ready. Open {base_url}/ ; staff log in at {base_url}/connexion with:")
    for login in logins:
        click.echo(f"  {login.role:<12} {login.email:<36} {login.password}   ({login.territory})")


def _run_cascades() -> Any:
    """One pass of the doctors' cascade (from `orientation cascade` or the dispatch loop)."""
    from orientation.links import LinkSigner
    from orientation.services.cascade import advance_cascades
    from orientation.services.doctor_contacts import Links

    settings = current_app.extensions["orientation.settings"]
    links = Links(LinkSigner(settings.secret_key), settings.base_url.rstrip("/"))
    session = _session()
    try:
        summary = advance_cascades(session, utcnow(), links)
        session.commit()
    finally:
        session.close()
    return summary


@click.command("cascade")
@with_appcontext
def cascade_command() -> None:
    """Ask the next doctor where the current one did not answer in time (run from a timer)."""
    summary = _run_cascades()
    click.echo(
        f"Cascades: {summary.expired} unanswered, {summary.asked} doctors asked, "
        f"{summary.exhausted} exhausted (coordinator alerted)."
    )


@click.command("purge")
@with_appcontext
def purge_command() -> None:
    """Apply each CPTS's retention settings (RGPD); meant for a daily timer."""
    from orientation.services.retention import purge

    session = _session()
    try:
        reports = purge(session, utcnow())
        session.commit()
    finally:
        session.close()
    for report in reports:
        click.echo(
            f"{report.territory_name}: {report.closed_anonymised} closed request(s) and "
            f"{report.out_of_territory_anonymised} out-of-territory request(s) anonymised, "
            f"{report.message_bodies_purged} message body(ies) purged"
            + (
                f"; {report.limited_kept} request(s) past retention kept: processing limited"
                " at the patient's request (RGPD art. 18)."
                if report.limited_kept
                else "."
            )
        )
    if not reports:
        click.echo("No CPTS on this instance: nothing to purge.")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn workers")
@with_appcontext
def serve_command(host: str, port: int, workers: int) -> None:
    """Serve the application with gunicorn (several workers share the database)."""
    from gunicorn.app.base import BaseApplication

    if not is_up_to_date(engine()):
        raise click.ClickException(
            "The database is not initialised or not up to date: run `orientation init`."
        )
    settings = current_app.extensions["orientation.settings"]

    class _Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("accesslog", None)  # URLs can carry private links: no access log
            self.cfg.set("errorlog", "-")

        def load(self) -> Any:
            from orientation import create_app

            return create_app(settings)

    click.echo(f"Orientation on http://{host}:{port}/ ({workers} workers). Ctrl+C stops it.")
    _Server().run()


@click.group("doctors")
def doctors_group() -> None:
    """Volunteer doctors: the six-month availability refresh."""


@doctors_group.command("remind")
@click.option(
    "--window-days",
    default=30,
    show_default=True,
    type=click.IntRange(0, 365),
    help="Remind doctors whose confirmation falls due within this many days.",
)
@click.option(
    "--second-after-days",
    default=14,
    show_default=True,
    type=click.IntRange(1, 365),
    help="Send a second reminder this many days after the first, if still unanswered.",
)
@with_appcontext
def doctors_remind(window_days: int, second_after_days: int) -> None:
    """Send the availability link to doctors due for confirmation; mark stale ones (daily)."""
    from orientation.services.doctor_refresh import availability_link, send_reminders
    from orientation.services.territories import all_territories

    settings = current_app.extensions["orientation.settings"]
    session = _session()
    now = utcnow()
    try:
        for territory in list(all_territories(session)):
            report = send_reminders(
                session,
                territory,
                now,
                lambda d: availability_link(d, settings.base_url, settings.secret_key),
                window_days=window_days,
                second_after_days=second_after_days,
            )
            session.commit()
            click.echo(
                f"{territory.name}: {report.first} first reminder(s), {report.second} second "
                f"reminder(s), {report.newly_stale} newly stale, {report.no_contact} without "
                "phone or e-mail."
            )
    finally:
        session.close()


def _dispatcher() -> Any:
    from datetime import timedelta

    from models import Channel
    from notifications.dispatcher import Dispatcher, DispatchPolicy
    from notifications.providers import build_providers

    settings = current_app.extensions["orientation.settings"]
    providers = build_providers(settings)
    policy = DispatchPolicy(
        max_attempts=settings.dispatch_max_attempts,
        retry_after=timedelta(seconds=settings.dispatch_retry_seconds),
        lease=timedelta(seconds=settings.dispatch_lease_seconds),
        concurrency=settings.dispatch_concurrency,
    )
    limits = {
        providers[Channel.SMS].name: settings.sms_rate_limit,
        providers[Channel.EMAIL].name: settings.email_rate_limit,
    }
    return Dispatcher(
        session_factory(), providers, policy, rate_limits=limits,
        # Shared between dispatcher processes when it is Redis (the web workers' limits too).
        rate_limit_storage=settings.ratelimit_storage_url,
    )  # fmt: skip


@click.command("dispatch")
@click.option("--once", is_flag=True, help="Send what is due, then exit.")
@click.option("--tick", default=1.0, show_default=True, help="Seconds between two rounds.")
@with_appcontext
def dispatch_command(once: bool, tick: float) -> None:
    """Send the outbox's messages (and run the other periodic jobs) until stopped."""
    import logging

    from notifications.loop import PeriodicJob, run_forever, stop_on_signals

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # The twilio client logs every request with its headers at INFO: too much, and personal.
    logging.getLogger("twilio").setLevel(logging.WARNING)
    dispatcher = _dispatcher()
    if once:
        report = dispatcher.run_once()
        click.echo(
            f"sent {report.sent}, rescheduled {report.rescheduled}, failed {report.failed}, "
            f"recovered {report.recovered}"
        )
        return
    # The periodic jobs of the instance: the outbox at every tick, the doctors' cascade
    # every five minutes (its delays are counted in hours).
    jobs = [
        PeriodicJob("dispatch", every_seconds=0, run=dispatcher.run_once),
        PeriodicJob("cascade", every_seconds=300, run=_run_cascades),
    ]
    stop = stop_on_signals()
    click.echo(f"Dispatching every {tick:g} s; SIGTERM or Ctrl+C stops cleanly.")
    run_forever(jobs, tick, stop)
    click.echo("Dispatcher stopped.")


def _signer_and_base_url() -> tuple[Any, str]:
    from orientation.links import LinkSigner

    settings = current_app.extensions["orientation.settings"]
    return LinkSigner(settings.secret_key), settings.base_url


@click.group("followup")
def followup_group() -> None:
    """Follow-up of patients after a proposal."""


@followup_group.command("send")
@with_appcontext
def followup_send() -> None:
    """Ask patients proposed a doctor N days ago how it went (once each; run daily)."""
    from orientation.services.followup import send_follow_ups

    signer, base_url = _signer_and_base_url()
    session = _session()
    try:
        count = send_follow_ups(session, signer, base_url, utcnow())
    finally:
        session.close()
    click.echo(f"{count} follow-up message(s) queued.")


@click.group("survey")
def survey_group() -> None:
    """The year-end satisfaction survey."""


@survey_group.command("send")
@click.option("--period", "year", required=True, type=click.IntRange(2000, 2100),
              help="The year whose oriented patients are surveyed, e.g. 2026.")  # fmt: skip
@with_appcontext
def survey_send(year: int) -> None:
    """Send the survey once to each patient oriented in the year who agreed to be contacted."""
    from orientation.services.survey import send_surveys

    signer, base_url = _signer_and_base_url()
    session = _session()
    try:
        count = send_surveys(session, signer, base_url, year, utcnow())
    finally:
        session.close()
    click.echo(f"{count} survey message(s) queued for {year}.")


def main() -> None:
    """Entry point of the `orientation` console script."""
    from orientation import create_app
    from orientation.config import load_settings

    try:
        settings = load_settings()
        app = create_app(settings)
    except ConfigError as exc:
        click.echo(f"orientation: {exc}", err=True)
        sys.exit(2)
    group = FlaskGroup(
        create_app=lambda: app,
        add_default_commands=True,
        add_version_option=False,
        load_dotenv=False,
        help="Orientation: intake, volunteer GPs and orientation for a CPTS.",
    )
    group.main(prog_name="orientation")
