"""The `orientation` command: init, territory add, demo, and clear failures."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Doctor,
    Request,
    Role,
    Source,
    Status,
    Territory,
    User,
    VolunteerStatus,
)
from orientation.services.accounts import PasswordTooWeak, check_password_policy


def test_init_loads_every_commune_of_the_region(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert "3782 communes loaded" in result.output


def test_territory_add_with_inline_codes(runner: FlaskCliRunner, session: Session) -> None:
    result = runner.invoke(
        args=["territory", "add", "CPTS des Weppes", "--communes", "59196, 59487;59208"]
    )
    assert result.exit_code == 0, result.output
    territory = session.scalar(select(Territory).where(Territory.slug == "cpts-des-weppes"))
    assert territory is not None
    assert territory.insee_codes == ["59196", "59208", "59487"]


def test_territory_add_from_a_csv_file(
    runner: FlaskCliRunner, session: Session, tmp_path: Path
) -> None:
    csv_file = tmp_path / "communes.csv"
    csv_file.write_text("\ufeffinsee;nom\n59017;Armentières\n59431;Nieppe\n", encoding="utf-8")
    result = runner.invoke(
        args=["territory", "add", "CPTS Lys", "--communes-file", str(csv_file), "--slug", "lys"]
    )
    assert result.exit_code == 0, result.output
    territory = session.scalar(select(Territory).where(Territory.slug == "lys"))
    assert territory is not None and territory.insee_codes == ["59017", "59431"]


def test_territory_add_rejects_unknown_codes_by_name_and_creates_nothing(
    runner: FlaskCliRunner, session: Session
) -> None:
    result = runner.invoke(args=["territory", "add", "CPTS X", "--communes", "59017,75056,99999"])
    assert result.exit_code != 0
    assert "75056, 99999" in result.output
    assert session.scalar(select(func.count()).select_from(Territory)) == 0


def test_territory_add_refuses_a_duplicate_slug(
    runner: FlaskCliRunner, make_territory: Callable[..., Territory]
) -> None:
    make_territory(name="CPTS Lys")
    result = runner.invoke(args=["territory", "add", "CPTS Lys", "--communes", "59017"])
    assert result.exit_code != 0
    assert "already exists" in result.output


def test_demo_creates_a_cpts_doctors_requests_and_prints_logins(
    runner: FlaskCliRunner, session: Session
) -> None:
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    assert "coordination@lys-armentieres.demo" in result.output
    lys = session.scalar(select(Territory).where(Territory.slug == "lys-armentieres"))
    assert lys is not None and "59017" in lys.insee_codes  # Armentières
    doctors = session.scalars(select(Doctor).where(Doctor.territory_id == lys.id)).all()
    assert len(doctors) >= 20 and all(d.is_demo and "(démo)" in d.last_name for d in doctors)
    assert len({d.accepting for d in doctors}) == 3  # varied availability
    # A few GPs as the national directory pre-fills them, for the coordinator to invite.
    assert 0 < sum(d.volunteer_status is VolunteerStatus.NOT_YET for d in doctors) < 10
    statuses = set(session.scalars(select(Request.status).where(Request.territory_id == lys.id)))
    assert {Status.ELIGIBLE, Status.PROPOSED, Status.ORIENTED} <= statuses

    again = runner.invoke(args=["demo"])  # a second run keeps the data and resets passwords
    assert again.exit_code == 0, again.output
    assert session.scalar(select(func.count()).select_from(Territory)) == 2
    assert (
        session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.email == "coordination@lys-armentieres.demo")
        )
        == 1
    )


def test_demo_professional_referrals_name_their_referrer(
    runner: FlaskCliRunner, session: Session
) -> None:
    # The indicators count "professionals who referred patients" from the referrer: a demo
    # referral without one showed "Professionnel 1" next to "0 professionnels".
    assert runner.invoke(args=["demo"]).exit_code == 0
    referred = session.execute(
        select(Request.referrer_id, User.email)
        .outerjoin(User, User.id == Request.referrer_id)
        .where(Request.source == Source.PROFESSIONAL)
    ).all()
    assert referred and all(email == "pharmacie@lys-armentieres.demo" for _, email in referred)


def test_demo_login_printed_by_the_command_works(runner: FlaskCliRunner, client) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(args=["demo"])
    line = next(x for x in result.output.splitlines() if "coordination@lys-armentieres" in x)
    password = line.split()[2]
    response = client.post(
        "/connexion", data={"email": "coordination@lys-armentieres.demo", "password": password}
    )
    assert response.status_code == 302
    assert "Lys-Armentières" in client.get("/espace/").get_data(as_text=True)


def _orientation(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ORIENTATION_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-c", "from orientation.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
        check=False,
    )


def test_unreachable_database_is_one_sentence_not_a_traceback(tmp_path: Path) -> None:
    result = _orientation(
        "init",
        ORIENTATION_INSTANCE_PATH=str(tmp_path),
        ORIENTATION_DATABASE_URL="postgresql+psycopg://nobody@127.0.0.1:9/none",
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "ORIENTATION_DATABASE_URL" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_secret_in_production_stops_the_cli(tmp_path: Path) -> None:
    result = _orientation(
        "init", ORIENTATION_INSTANCE_PATH=str(tmp_path), ORIENTATION_ENV="production"
    )
    assert result.returncode == 2
    assert "ORIENTATION_SECRET_KEY must be set in production" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_an_uninitialised_database(tmp_path: Path) -> None:
    result = _orientation("serve", ORIENTATION_INSTANCE_PATH=str(tmp_path))
    assert result.returncode != 0
    assert "run `orientation init`" in result.stderr


def test_the_first_instance_admin_is_created_from_the_command_line_and_can_log_in(
    runner: FlaskCliRunner, session: Session, client: FlaskClient
) -> None:
    password = "une-Phrase-de-passe-42"
    weak = runner.invoke(
        args=["admin", "create", "root@cpts.example", "--name", "Camille Admin"],
        input="court\ncourt\n",
    )
    assert weak.exit_code != 0 and session.scalar(select(User)) is None
    made = runner.invoke(
        args=["admin", "create", "Root@CPTS.example", "--name", "Camille Admin"],
        input=f"{password}\n{password}\n",
    )
    assert made.exit_code == 0, made.output
    user = session.scalars(select(User)).one()
    assert (user.email, user.role, user.territory_id) == ("root@cpts.example", Role.ADMIN, None)
    again = runner.invoke(
        args=["admin", "create", "root@cpts.example", "--name", "X"],
        input=f"{password}\n{password}\n",
    )
    assert again.exit_code != 0 and "already uses" in again.output
    login = client.post("/connexion", data={"email": "root@cpts.example", "password": password})
    assert login.status_code == 302
    assert client.get("/admin/").status_code == 200
    assert session.scalar(select(AuditEntry.action).where(AuditEntry.actor_label == "cli"))


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("court-42", "au moins 12 caractères"),
        ("seulementdeslettres", "mélangez lettres et chiffres ou signes"),
        ("123456789012345", "mélangez lettres et chiffres ou signes"),
        ("Root@CPTS.example", "le mot de passe ne peut pas être l'adresse e-mail"),
    ],
)
def test_a_refused_password_is_said_in_a_french_sentence_and_creates_no_account(
    runner: FlaskCliRunner, session: Session, password: str, rule: str
) -> None:
    result = runner.invoke(
        args=["admin", "create", "root@cpts.example", "--name", "Camille Admin"],
        input=f"{password}\n{password}\n",
    )
    assert result.exit_code != 0
    assert (
        f"Mot de passe refusé : il ne respecte pas la règle « {rule} ». Aucun compte n'a été "
        "créé : relancez la commande avec un autre mot de passe." in result.output
    )
    # The rule's words are the accounts service's own, not a copy that could drift.
    with pytest.raises(PasswordTooWeak, match=f"^{rule}$"):
        check_password_policy(password, "root@cpts.example")
    assert session.scalar(select(func.count()).select_from(User)) == 0
