"""The template editor refuses, in French, a text its recipients could not act on or that
does not render, and says which variables the message has (the shipped texts, not a fake)."""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import MessageTemplate, Role, Territory, User


@pytest.fixture
def admin_client(
    client: Any, auth: Any, make_territory: Callable[..., Territory], make_user: Callable[..., User]
) -> Any:
    auth.login(make_user(make_territory(), Role.CPTS_ADMIN))
    return client


def test_a_text_without_the_link_its_recipient_acts_on_is_not_saved(
    admin_client: Any, session: Session
) -> None:
    typed = "{{ cpts_name }} : merci de confirmer vos disponibilités."
    response = admin_client.post(
        "/espace/modeles/doctor_reminder/sms", data={"body": typed, "action": "save"}
    )
    page = html.unescape(response.get_data(as_text=True))
    assert "gardez {{ link }} : sans ce lien, la personne qui reçoit le message ne peut" in page
    assert typed in page
    assert session.scalars(select(MessageTemplate)).all() == []


def test_template_errors_are_said_in_french_with_the_variables_to_use(admin_client: Any) -> None:
    def error_of(body: str) -> str:
        response = admin_client.post(
            "/espace/modeles/doctor_reminder/sms", data={"body": body, "action": "preview"}
        )
        return html.unescape(response.get_data(as_text=True))

    assert "syntaxe incorrecte à la ligne 2" in error_of("Bonjour\n{{ cpts_name }")
    unknown = error_of("{{ date_limite }} {{ link }}")
    assert "la variable {{ date_limite }} n'existe pas ici (variables de ce message :" in unknown
    assert "{{ link }}" in unknown.split("variables de ce message")[1]
    assert "opération interdite" in error_of("{{ link.__class__ }}")
    assert "ce texte ne peut pas être mis en forme" in error_of("{{ 1/0 }} {{ link }}")
    assert "is undefined" not in unknown and "unexpected" not in error_of("{{ link }")
