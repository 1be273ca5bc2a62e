"""Per-CPTS message templates: rendering with the CPTS's wording, and the admin page that checks
an edited text before saving it and shows what an SMS costs."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import AuditEntry, Channel, MessageTemplate, Role, Territory, User, utcnow
from notifications import templates as shipped
from notifications.templates import MessageTemplateError
from orientation.services.message_templates import (
    render_for_territory,
    save_template,
)

PROPOSAL_SMS = "{{ first_name }}, le {{ doctor_name }} peut vous recevoir. Réf. {{ reference }}\n"
PROPOSAL_EMAIL = "Objet: Votre médecin, réf. {{ reference }}\n\nBonjour {{ first_name }},\n"


@pytest.fixture(autouse=True)
def message_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "messages"
    folder.mkdir()
    (folder / "proposal.sms.txt").write_text(PROPOSAL_SMS, encoding="utf-8")
    (folder / "proposal.email.txt").write_text(PROPOSAL_EMAIL, encoding="utf-8")
    monkeypatch.setattr(shipped, "MESSAGE_TEMPLATES", folder)
    shipped._environment.cache_clear()
    yield folder
    shipped._environment.cache_clear()


CONTEXT = {"first_name": "Jeanne", "doctor_name": "Dr Roux", "reference": "AB12-CD34"}


def test_without_an_override_the_shipped_text_is_used(
    session: Session, make_territory: Callable[..., Territory]
) -> None:
    territory = make_territory()
    rendered = render_for_territory(session, territory.id, "proposal", Channel.SMS, CONTEXT)
    assert rendered.body == "Jeanne, le Dr Roux peut vous recevoir. Réf. AB12-CD34"


def test_a_cpts_override_is_used_for_that_cpts_only(
    session: Session, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> None:
    ours, theirs = make_territory(), make_territory()
    admin = make_user(ours, Role.CPTS_ADMIN)
    save_template(
        session,
        ours.id,
        "proposal",
        Channel.SMS,
        "RDV avec {{ doctor_name }} ({{ reference }})",
        user_id=admin.id,
        now=utcnow(),
    )
    session.commit()
    assert render_for_territory(session, ours.id, "proposal", Channel.SMS, CONTEXT).body == (
        "RDV avec Dr Roux (AB12-CD34)"
    )
    assert render_for_territory(
        session, theirs.id, "proposal", Channel.SMS, CONTEXT
    ).body.startswith("Jeanne, le Dr Roux")


def test_a_template_using_an_unknown_variable_is_not_saved(
    session: Session, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> None:
    territory = make_territory()
    admin = make_user(territory, Role.CPTS_ADMIN)
    with pytest.raises(MessageTemplateError, match="telephone"):
        save_template(
            session,
            territory.id,
            "proposal",
            Channel.SMS,
            "Appelez {{ telephone }}",
            user_id=admin.id,
            now=utcnow(),
        )
    assert session.scalars(select(MessageTemplate)).all() == []


@pytest.fixture
def admin_client(
    client: Any, auth: Any, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> Any:
    territory = make_territory()
    auth.login(make_user(territory, Role.CPTS_ADMIN))
    client.territory = territory
    return client


def test_the_admin_page_lists_templates_and_previews_sms_length(admin_client: Any) -> None:
    page = admin_client.get("/espace/modeles").get_data(as_text=True)
    assert "proposal" in page and "D'origine" in page
    edit = admin_client.get("/espace/modeles/proposal/sms").get_data(as_text=True)
    assert "Jeanne, le Dr Camille Lefèvre peut vous recevoir" in edit
    assert "(GSM-7), 1 SMS" in edit


def test_one_circumflex_switching_the_sms_to_ucs_2_is_shown_before_saving(
    admin_client: Any, session: Session
) -> None:
    body = "Vous êtes attendu chez {{ doctor_name }}. " + "Merci de confirmer. " * 2
    response = admin_client.post(
        "/espace/modeles/proposal/sms", data={"body": body, "action": "preview"}
    )
    page = response.get_data(as_text=True)
    assert "(UCS-2), 2 SMS" in page and "UCS-2 (70 caractères par SMS) : ê" in page
    assert session.scalars(select(MessageTemplate)).all() == []
    shorter = body.replace("ê", "e")
    response = admin_client.post(
        "/espace/modeles/proposal/sms", data={"body": shorter, "action": "preview"}
    )
    assert "(GSM-7), 1 SMS" in response.get_data(as_text=True)


def test_saving_a_broken_template_keeps_the_text_and_says_why(
    admin_client: Any, session: Session
) -> None:
    typed = "Bonjour {{ first_name }, votre RDV"
    response = admin_client.post(
        "/espace/modeles/proposal/sms", data={"body": typed, "action": "save"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Ce texte ne peut pas être utilisé" in page
    assert "Bonjour {{ first_name }, votre RDV" in page
    assert 'aria-invalid="true"' in page
    assert session.scalars(select(MessageTemplate)).all() == []


def test_saving_then_resetting_a_template_is_audited(admin_client: Any, session: Session) -> None:
    response = admin_client.post(
        "/espace/modeles/proposal/email",
        data={"body": "Objet: Réf. {{ reference }}\n\nBonjour", "action": "save"},
        follow_redirects=True,
    )
    assert "Modèle enregistré" in response.get_data(as_text=True)
    stored = session.scalar(select(MessageTemplate))
    assert stored is not None and stored.territory_id == admin_client.territory.id
    admin_client.post("/espace/modeles/proposal/email", data={"body": "x", "action": "reset"})
    session.expire_all()
    assert session.scalars(select(MessageTemplate)).all() == []
    actions = set(session.scalars(select(AuditEntry.action)))
    assert {"message_template_saved", "message_template_reset"} <= actions


def test_an_email_template_needs_a_subject_line(admin_client: Any) -> None:
    response = admin_client.post(
        "/espace/modeles/proposal/email", data={"body": "Bonjour", "action": "save"}
    )
    assert "Objet: " in response.get_data(as_text=True)


def test_coordinators_cannot_edit_templates_and_unknown_ones_are_404(
    client: Any,
    auth: Any,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    admin_client: Any,
) -> None:
    assert admin_client.get("/espace/modeles/nope/sms").status_code == 404
    assert admin_client.get("/espace/modeles/proposal/fax").status_code == 404
    auth.logout()
    auth.login(make_user(make_territory(), Role.COORDINATOR))
    assert client.get("/espace/modeles").status_code == 403
