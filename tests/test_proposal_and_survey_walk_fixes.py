"""Fixes from a user walk: the doctors' answers in the proposal form, the survey's comments
for the CPTS, SMS written in French within GSM-7, and a demo whose oriented request is one the
app could have made."""

from __future__ import annotations

import html
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import Session

from models import (
    AuditEntry,
    Channel,
    ContactStatus,
    Doctor,
    DoctorContact,
    Message,
    Request,
    RequestEvent,
    Role,
    Status,
    SurveyAnswer,
    Territory,
    User,
    utcnow,
)
from notifications.sms import sms_length
from notifications.templates import render_message
from orientation.services.message_templates import sample_context, shipped_templates
from tests.conftest import AuthActions


def _text(markup: str) -> str:
    """What a reader sees: tags dropped, entities decoded, spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


# 1. The proposal form says each doctor's answer, and offers no box for one who declined.


def _proposal_doctors(page: str) -> str:
    return page.split('id="proposal-doctors"')[1].split("</fieldset>")[0]


def _box_label(fieldset: str, doctor: Doctor) -> str | None:
    """The text of the label around this doctor's checkbox, or None when there is no box."""
    for label in re.findall(r"<label\b.*?</label>", fieldset, flags=re.S):
        if f'name="doctor_ids" value="{doctor.id}"' in label:
            return _text(label)
    return None


def test_the_proposal_form_says_who_declined_and_who_has_not_answered(
    auth: AuthActions,
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(
        territory, Status.DOCTORS_CONTACTED, phone="+33612345678", lat=50.688, lon=2.88
    )
    declined = make_doctor(territory, last_name="Refus")
    pending = make_doctor(territory, last_name="Attente")
    accepted = make_doctor(territory, last_name="Accord")
    phoned = make_doctor(territory, last_name="Telephone")  # asked by phone: no contact row
    for position, (doctor, status) in enumerate(
        [
            (declined, ContactStatus.DECLINED),
            (pending, ContactStatus.ASKED),
            (accepted, ContactStatus.ACCEPTED),
        ],
        start=1,
    ):
        session.add(
            DoctorContact(
                territory_id=territory.id, request_id=request.id, doctor_id=doctor.id,
                status=status, position=position,
            )
        )  # fmt: skip
    session.commit()
    auth.login(make_user(territory))

    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    fieldset = _proposal_doctors(page)

    assert _box_label(fieldset, declined) is None  # not offered
    assert f"{declined.display_name} — " in _text(fieldset)
    assert re.search(re.escape(declined.display_name) + r" — [^()]*\(a refusé\)", _text(fieldset))
    pending_label = _box_label(fieldset, pending)
    assert pending_label is not None and pending_label.endswith("(en attente de réponse)")
    accepted_label = _box_label(fieldset, accepted)
    assert accepted_label is not None and accepted_label.endswith("(a accepté)")
    phoned_label = _box_label(fieldset, phoned)
    assert phoned_label is not None and "(" not in phoned_label.split(" — ")[-1]
    # The draft names the doctor who accepted, never the one who declined.
    draft = html.unescape(page.split('id="sms_body"')[1].split("</textarea>")[0])
    assert accepted.display_name in draft and declined.display_name not in draft


def test_without_an_accepted_doctor_the_draft_skips_the_one_who_declined(
    auth: AuthActions,
    client: FlaskClient,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(territory, Status.DOCTORS_CONTACTED, lat=50.688, lon=2.88)
    declined = make_doctor(territory, last_name="Refus")
    other = make_doctor(territory, last_name="Autre")
    session.add(
        DoctorContact(
            territory_id=territory.id, request_id=request.id, doctor_id=declined.id,
            status=ContactStatus.DECLINED,
        )
    )  # fmt: skip
    session.commit()
    auth.login(make_user(territory))
    page = client.get(f"/espace/demandes/{request.id}").get_data(as_text=True)
    draft = html.unescape(page.split('id="sms_body"')[1].split("</textarea>")[0])
    assert other.display_name in draft and declined.display_name not in draft
    label = _box_label(_proposal_doctors(page), other)
    assert (
        label is not None
        and "checked" in _proposal_doctors(page).split(f'value="{other.id}"')[1].split(">")[0]
    )


# 2. The survey's free comments, for the CPTS's own coordinators and admins.


@pytest.fixture
def two_cpts_answers(
    session: Session, make_territory: Callable[..., Territory]
) -> tuple[Territory, Territory]:
    ours = make_territory(name="CPTS Lys")
    theirs = make_territory(name="CPTS Autre")
    session.add_all(
        [
            SurveyAnswer(territory_id=ours.id, period=2026, found_gp=True, satisfaction=5,
                         comment="Merci, <script>alert(1)</script> très bien accueillie."),
            SurveyAnswer(territory_id=ours.id, period=2026, found_gp=False, satisfaction=2,
                         comment=""),
            SurveyAnswer(territory_id=ours.id, period=2024, found_gp=True, satisfaction=4,
                         comment="Un commentaire d'une autre année"),
            SurveyAnswer(territory_id=theirs.id, period=2026, found_gp=True, satisfaction=3,
                         comment="Commentaire de l'autre CPTS"),
        ]
    )  # fmt: skip
    session.commit()
    return ours, theirs


YEAR_2026 = {"du": "2026-01-01", "au": "2026-12-31"}


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.CPTS_ADMIN])
def test_the_cpts_reads_its_survey_comments_escaped_and_audited(
    role: Role,
    auth: AuthActions,
    client: FlaskClient,
    session: Session,
    make_user: Callable[..., User],
    two_cpts_answers: tuple[Territory, Territory],
) -> None:
    ours, _ = two_cpts_answers
    user = make_user(ours, role)
    auth.login(user)
    indicators = client.get("/espace/indicateurs", query_string=YEAR_2026).get_data(as_text=True)
    link = re.search(r'href="(/espace/indicateurs/commentaires[^"]*)"', indicators)
    assert link is not None
    assert "Lire les commentaires libres de l'enquête (anonymes)" in html.unescape(indicators)

    page = client.get(html.unescape(link.group(1)))
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    text = _text(body)
    assert "Merci, <script>alert(1)</script> très bien accueillie." in text
    assert "Enquête 2026" in text and "1 commentaire." in text
    assert "Commentaire de l'autre CPTS" not in text  # tenant isolation
    assert "autre année" not in text  # the period's years only
    entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "survey_comments"))
    assert entry is not None
    assert (entry.user_id, entry.territory_id) == (user.id, ours.id)
    assert entry.details["first"] == "2026-01-01" and entry.details["count"] == 1


@pytest.mark.parametrize("role", [Role.REFERRER, Role.ADMIN])
def test_survey_comments_are_not_shown_to_others(
    role: Role,
    auth: AuthActions,
    client: FlaskClient,
    session: Session,
    make_user: Callable[..., User],
    two_cpts_answers: tuple[Territory, Territory],
) -> None:
    ours, _ = two_cpts_answers
    auth.login(make_user(None if role is Role.ADMIN else ours, role))
    page = client.get("/espace/indicateurs/commentaires", query_string=YEAR_2026)
    assert page.status_code == 403
    assert "Merci" not in page.get_data(as_text=True)
    if role is Role.ADMIN:  # the instance admin sees the figures of every CPTS, not the words
        figures = client.get("/espace/indicateurs", query_string=YEAR_2026)
        assert figures.status_code == 200
        assert "/espace/indicateurs/commentaires" not in figures.get_data(as_text=True)


def test_a_reversed_period_is_refused_on_the_comments_page(
    auth: AuthActions,
    client: FlaskClient,
    make_user: Callable[..., User],
    two_cpts_answers: tuple[Territory, Territory],
) -> None:
    auth.login(make_user(two_cpts_answers[0]))
    page = client.get(
        "/espace/indicateurs/commentaires", query_string={"du": "2026-12-31", "au": "2026-01-01"}
    )
    assert page.status_code == 400 and "Merci" not in page.get_data(as_text=True)


# 3. SMS in French, within GSM-7 and the segments they had.

# Segments of each shipped SMS with the sample values, before accents were written.
SEGMENTS_BEFORE = {
    "acknowledgement": 2,
    "doctor_invitation": 2,
    "doctor_reminder": 2,
    "doctor_request": 1,
    "followup": 1,
    "link_renewed": 2,  # written with its accents
    "proposal": 2,
    "survey": 1,
}


def test_every_default_sms_is_french_gsm7_text_within_its_segments() -> None:
    sms = [key for key, channel in shipped_templates() if channel is Channel.SMS]
    assert sorted(sms) == sorted(SEGMENTS_BEFORE)
    for key in sms:
        body = render_message(key, Channel.SMS, sample_context(key, Channel.SMS)).body
        length = sms_length(body)
        assert length.encoding == "GSM-7", (key, length.non_gsm_characters)
        assert length.segments <= SEGMENTS_BEFORE[key], (key, length)
        assert not re.search(r"\bmedecins?\b|\btel\b|\bref\.", body), (key, body)
    proposal = render_message("proposal", Channel.SMS, sample_context("proposal", Channel.SMS))
    assert "médecin(s) pouvant devenir votre médecin traitant (réf. " in proposal.body
    assert ", tél. " in proposal.body
    request = render_message(
        "doctor_request", Channel.SMS, sample_context("doctor_request", Channel.SMS)
    )
    assert "comme médecin traitant ?" in request.body


def test_a_proposal_to_three_doctors_stays_in_four_gsm7_segments() -> None:
    doctor = {
        "name": "Dr Camille Lefèvre",
        "address": "3 place du Général de Gaulle, 59280 Armentières",
        "phone": "03 20 00 00 01",
        "distance": "0,1 km",
    }
    body = render_message(
        "proposal",
        Channel.SMS,
        {
            "territory_name": "CPTS Lys-Armentières",
            "reference": "K7QM-4T2X",
            "doctors": [doctor] * 3,
            "follow_url": "https://orientation.example.org/suivi/" + "A" * 40,
        },
    ).body
    length = sms_length(body)
    assert length.encoding == "GSM-7" and length.segments == 4  # as before the accents


# 4. The demo's oriented request is one the app could have made.


def test_a_fresh_demo_has_a_patient_for_this_years_survey(
    runner: FlaskCliRunner, session: Session
) -> None:
    assert runner.invoke(args=["demo"]).exit_code == 0
    oriented = session.scalars(
        select(Request).where(Request.status == Status.ORIENTED, Request.is_demo.is_(True))
    ).all()
    assert oriented
    for request in oriented:
        assert request.closed_at is not None and request.oriented_doctor_id is not None
        assert request.closed_at.year == utcnow().year
        steps = [
            (e.from_status, e.to_status)
            for e in session.scalars(
                select(RequestEvent)
                .where(RequestEvent.request_id == request.id)
                .order_by(RequestEvent.at)
            )
        ]
        assert steps[-2:] == [
            (Status.ELIGIBLE, Status.PROPOSED),
            (Status.PROPOSED, Status.ORIENTED),
        ]
    year = str(utcnow().year)
    result = runner.invoke(args=["survey", "send", "--period", year])
    assert result.exit_code == 0, result.output
    queued = int(re.search(r"(\d+) survey message\(s\) queued", result.output).group(1))  # type: ignore[union-attr]
    assert queued >= 1
    messages = session.scalars(select(Message).where(Message.purpose == "survey")).all()
    assert {m.request_id for m in messages} <= {r.id for r in oriented} and messages
