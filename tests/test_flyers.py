"""Flyers: the QR code decodes back to the questionnaire URL with its source tag."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from PIL import Image
from pyzbar.pyzbar import decode

from models import Role, Territory, User
from orientation.services.flyers import FlyerError, clean_tag, questionnaire_url
from tests.conftest import AuthActions


def decoded(png: bytes) -> list[str]:
    return [symbol.data.decode() for symbol in decode(Image.open(io.BytesIO(png)))]


@pytest.fixture
def coordinator(
    make_territory: Callable[..., Territory], make_user: Callable[..., User], auth: AuthActions
) -> User:
    user = make_user(make_territory("CPTS Lys", ["59017"]), Role.COORDINATOR)
    auth.login(user)
    return user


def test_the_source_tag_is_cleaned_for_urls() -> None:
    assert clean_tag(" Site Web ") == "site-web"
    with pytest.raises(FlyerError):
        clean_tag("  ")
    assert (
        questionnaire_url("https://o.example/", "cpts-lys", "mairie")
        == "https://o.example/cpts/cpts-lys/demande?source=mairie"
    )


def test_the_qr_png_decodes_to_the_exact_questionnaire_url(
    client: FlaskClient, coordinator: User
) -> None:
    response = client.get("/espace/flyers/qr.png?source=pharmacie&format=A4")
    assert response.mimetype == "image/png"
    assert decoded(response.data) == ["http://localhost/cpts/cpts-lys/demande?source=pharmacie"]


@pytest.mark.parametrize("page", ["A4", "A5"])
def test_the_flyer_png_download_carries_a_readable_qr(
    client: FlaskClient, coordinator: User, page: str
) -> None:
    response = client.get(f"/espace/flyers/flyer.png?source=mairie&format={page}")
    assert "attachment" in response.headers["Content-Disposition"]
    assert decoded(response.data) == ["http://localhost/cpts/cpts-lys/demande?source=mairie"]


def test_the_flyer_pdf_and_svg_downloads(client: FlaskClient, coordinator: User) -> None:
    pdf = client.get("/espace/flyers/flyer.pdf?source=cabinet&format=A5")
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    svg = client.get("/espace/flyers/qr.svg?source=cabinet")
    assert svg.mimetype == "image/svg+xml" and b"<svg" in svg.data


def test_the_printable_page_shows_the_cpts_contacts_and_the_qr(
    client: FlaskClient, coordinator: User
) -> None:
    html = client.get("/espace/flyers/imprimer?source=mairie&format=A5").get_data(as_text=True)
    assert "Vous n&#39;avez pas de médecin traitant ?" in html
    assert "03 20 00 00 01" in html and "cpts1@example.org" in html
    assert 'class="flyer flyer-a5"' in html
    assert "/espace/flyers/qr.svg?source=mairie" in html
    index = client.get("/espace/flyers/").get_data(as_text=True)
    assert 'value="pharmacie"' in index


def test_flyers_are_for_staff_only(
    client: FlaskClient, make_territory: Callable[..., Territory], make_user: Callable[..., User],
    auth: AuthActions,
) -> None:  # fmt: skip
    assert client.get("/espace/flyers/").status_code == 302  # to the login page
    auth.login(make_user(make_territory(), Role.REFERRER))
    assert client.get("/espace/flyers/").status_code == 403
