"""A coordinator takes a request from the queue to "oriented", a doctor accepting through the
link in between; the texts land in the outbox (sending them is the dispatcher's job)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Doctor, Message, Request, Status, Territory, User, utcnow
from tests.conftest import PASSWORD

# Screenshots for people to look at: ORIENTATION_SCREENSHOTS=folder keeps them.
SHOTS_ENV = "ORIENTATION_SCREENSHOTS"


def test_coordinator_orients_a_request_with_a_doctor_who_accepts_by_link(
    live_server: str,
    desktop_page,  # type: ignore[no-untyped-def]
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
    tmp_path: Path,
) -> None:
    shots = Path(os.environ[SHOTS_ENV]) if os.environ.get(SHOTS_ENV) else tmp_path
    territory = make_territory(name="CPTS Lys-Armentières")
    now = utcnow()
    request = make_request(
        territory,
        persons=[("Odette", "Lemaire", date(1948, 2, 3))],
        phone="+33612345678",
        email="odette@example.org",
        street="12 rue des Lilas",
        lat=50.688,
        lon=2.88,
        is_priority=True,
        need_home_visits=True,
        created_at=now - timedelta(days=4),
    )
    make_request(territory, Status.RECEIVED, persons=[("Karim", "Benali", date(1990, 6, 1))],
                 created_at=now - timedelta(days=6))  # fmt: skip
    make_request(territory, persons=[("Lucie", "Morel", date(2023, 1, 9))], is_priority=True,
                 created_at=now - timedelta(hours=5))  # fmt: skip
    doctor = make_doctor(
        territory, last_name="Dupont", email="dupont@example.org", phone="+33320000001",
        practice_address="3 place du Général de Gaulle", postal_code="59280",
        home_visits=True, home_visit_radius_km=8, lat=50.690, lon=2.882, capacity_left=2,
    )  # fmt: skip
    make_doctor(territory, last_name="Sansvisite", lat=50.689, lon=2.881)
    user = make_user(territory)
    shots.mkdir(parents=True, exist_ok=True)

    page = desktop_page
    page.goto(live_server + "/connexion")
    page.get_by_label("Adresse e-mail").fill(user.email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("navigation", name="Espace coordination").get_by_role(
        "link", name="Demandes"
    ).click()
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == 3
    assert request.reference in rows.nth(0).inner_text()  # priority, then oldest
    page.screenshot(path=str(shots / "queue.png"), full_page=True)

    page.get_by_role("link", name=request.reference).click()
    assert (
        page.get_by_role("heading", level=1).inner_text().startswith(f"Demande {request.reference}")
    )
    ranked = page.locator("table.ranked")
    assert "Dr Alex Dupont" in ranked.inner_text() and "Sansvisite" not in ranked.inner_text()
    page.get_by_text("Médecins écartés et pourquoi (1)").click()
    expect(page.get_by_text("ne fait pas de visites à domicile")).to_be_visible()
    page.get_by_label("Solliciter Dr Alex Dupont").check()
    page.get_by_role("button", name="Solliciter les médecins cochés").click()
    expect(page.get_by_text("1 médecin(s) sollicité(s).")).to_be_visible()

    asked = session.scalars(select(Message).where(Message.doctor_id == doctor.id)).one()
    accept = re.findall(r"http://localhost(/medecin/reponse/\S+)", asked.body)[0]
    doctor_page = page.context.new_page()
    doctor_page.goto(live_server + accept)
    assert "Odette" not in doctor_page.content()
    doctor_page.get_by_role("button", name="Oui, je peux le prendre").click()
    expect(
        doctor_page.get_by_role("heading", name="Merci, votre accord est enregistré")
    ).to_be_visible()
    doctor_page.close()

    page.reload()
    assert "accepte" in page.locator("table.contacts-table").inner_text()
    sms = page.get_by_label("Texte du SMS (modifiable)")
    assert "Dr Alex Dupont" in sms.input_value()
    counter = page.locator("#sms-count")
    sms.fill("Dr Dupont peut être votre médecin : 03 20 00 00 01.")  # ê: UCS-2
    assert "UCS-2" in counter.inner_text() and "ê" in counter.inner_text()
    sms.fill("Dr Dupont peut devenir votre medecin traitant : 03 20 00 00 01.")
    assert "GSM-7" in counter.inner_text() and "1 SMS" in counter.inner_text()
    page.screenshot(path=str(shots / "request.png"), full_page=True)
    page.get_by_role("button", name="Envoyer la proposition").click()
    expect(page.get_by_text("Proposition envoyée (SMS, e-mail).")).to_be_visible()

    proposals = session.scalars(
        select(Message).where(Message.purpose == "proposal").order_by(Message.channel)
    ).all()
    assert [(m.channel.value, m.recipient) for m in proposals] == [
        ("email", "odette@example.org"),
        ("sms", "+33612345678"),
    ]
    assert proposals[1].body == "Dr Dupont peut devenir votre medecin traitant : 03 20 00 00 01."
    assert (
        "Dr Alex Dupont" in proposals[0].body
        and "3 place du Général de Gaulle" in proposals[0].body
    )

    page.get_by_label("Médecin traitant choisi").select_option(label="Dr Alex Dupont")
    page.get_by_role("button", name="Marquer comme orientée").click()
    expect(page.get_by_text("La demande est orientée.")).to_be_visible()
    session.refresh(request)
    assert request.status == Status.ORIENTED and request.oriented_doctor_id == doctor.id
    session.refresh(doctor)
    assert doctor.capacity_left == 1
