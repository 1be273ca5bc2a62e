"""Ranking doctors for a request: needs from the household, nearest fitting doctors first."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import date, timedelta

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from geo.communes import gazetteer
from models import Accepting, Doctor, Request, Territory, User, VolunteerStatus, utcnow
from orientation.services.matching import patient_needs, rank_doctors
from tests.conftest import AuthActions

TODAY = date(2026, 11, 23)


def test_needs_come_from_birth_dates_ald_and_the_answers(
    make_territory: Callable[..., Territory], make_request: Callable[..., Request]
) -> None:
    territory = make_territory()
    household = make_request(
        territory,
        persons=[
            ("Léa", "Martin", date(2022, 1, 1)),  # 4 years old
            ("Jean", "Martin", date(1956, 11, 30)),  # 70 in a week: not yet
        ],
        need_home_visits=True,
        need_reduced_mobility=True,
    )
    needs = patient_needs(household, TODAY)
    assert needs.under_6 and not needs.elderly_dependent and not needs.ald_followup
    assert needs.home_visits and needs.step_free_access
    commune = gazetteer().by_insee["59017"]
    assert (needs.lat, needs.lon) == (commune.lat, commune.lon)  # no address point: the commune

    elderly = make_request(
        territory, persons=[("Paul", "Roy", date(1950, 1, 1))], lat=50.6, lon=3.0
    )
    elderly.persons[0].ald = True
    needs = patient_needs(elderly, TODAY)
    assert needs.elderly_dependent and needs.ald_followup and (needs.lat, needs.lon) == (50.6, 3.0)


def test_ranking_keeps_fitting_doctors_nearest_first_and_explains_the_others(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(
        territory, persons=[("Léa", "Petit", date(2023, 3, 1))], lat=50.6880, lon=2.8800
    )
    near = make_doctor(territory, lat=50.6890, lon=2.8810)
    farther = make_doctor(territory, lat=50.7000, lon=2.9000)
    no_children = make_doctor(territory, lat=50.6885, lon=2.8805, accepts_under_6=False)
    full = make_doctor(territory, lat=50.6886, lon=2.8806, capacity_left=0)
    stale = make_doctor(
        territory, lat=50.6887, lon=2.8807, confirmed_at=utcnow() - timedelta(days=400)
    )
    paused = make_doctor(territory, lat=50.6888, lon=2.8808, accepting=Accepting.NO)
    too_far = make_doctor(territory, lat=51.0, lon=2.3)
    unplaced = make_doctor(territory, lat=None, lon=None)
    make_doctor(territory, volunteer_status=VolunteerStatus.NOT_YET)  # never asked: not listed

    ranking = rank_doctors(session, territory, request, utcnow())
    assert [c.doctor.id for c in ranking.candidates] == [near.id, farther.id]
    assert ranking.candidates[0].distance_km < 0.2
    reasons = {d.doctor.id: d.reasons for d in ranking.left_out}
    assert reasons[no_children.id] == ("ne prend pas d'enfants de moins de 6 ans",)
    assert reasons[full.id] == ("plus de place annoncée",)
    assert reasons[stale.id] == ("disponibilité à reconfirmer (trop ancienne)",)
    assert reasons[paused.id] == ("n'accepte pas de nouveaux patients",)
    assert reasons[too_far.id] == ("trop loin",)
    assert reasons[unplaced.id] == ("adresse du cabinet non localisée",)
    assert len(reasons) == 6


def test_home_visits_and_reduced_mobility_filter_doctors(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(
        territory, lat=50.6880, lon=2.8800, need_home_visits=True, need_reduced_mobility=True
    )
    fits = make_doctor(
        territory,
        lat=50.70,
        lon=2.90,
        home_visits=True,
        home_visit_radius_km=5,
        step_free_access=True,
    )
    small_radius = make_doctor(
        territory, lat=50.70, lon=2.90, home_visits=True, home_visit_radius_km=1,
        step_free_access=True,
    )  # fmt: skip
    stairs = make_doctor(territory, lat=50.69, lon=2.88, home_visits=True, home_visit_radius_km=5)
    ranking = rank_doctors(session, territory, request, utcnow())
    assert [c.doctor.id for c in ranking.candidates] == [fits.id]
    reasons = {d.doctor.id: d.reasons for d in ranking.left_out}
    assert reasons[small_radius.id] == ("domicile hors de son rayon de visites",)
    assert reasons[stairs.id] == ("cabinet sans accès de plain-pied",)


def test_a_doctor_paused_until_a_past_day_accepts_again(
    session: Session,
    make_territory: Callable[..., Territory],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(territory)
    back = make_doctor(
        territory, accepting=Accepting.PAUSED, paused_until=utcnow().date() - timedelta(days=1)
    )
    still_paused = make_doctor(
        territory, accepting=Accepting.PAUSED, paused_until=utcnow().date() + timedelta(days=9)
    )
    ids = [c.doctor.id for c in rank_doctors(session, territory, request, utcnow()).candidates]
    assert back.id in ids and still_paused.id not in ids


LANDLINE = "+33320820199"  # 03 20 82 01 99: no SMS reaches it


def ranked_rows(page: str) -> list[str]:
    """The rows of the ranking table on the request page, nearest first."""
    table = page.split('<table class="table ranked">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], flags=re.S)


def proposal_fieldset(page: str) -> str:
    return page.split('id="proposal-doctors"', 1)[1].split("</fieldset>", 1)[0]


def test_a_doctor_no_message_can_reach_keeps_their_rank_with_the_reason_and_no_box_to_tick(
    client: FlaskClient,
    auth: AuthActions,
    session: Session,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(territory, lat=50.6880, lon=2.8800)
    near = make_doctor(territory, last_name="Proche", email="proche@example.org",
                       lat=50.6890, lon=2.8810)  # fmt: skip
    landline = make_doctor(territory, last_name="Fixe", phone=LANDLINE, preferred_channel="sms",
                           lat=50.6900, lon=2.8830)  # fmt: skip
    silent = make_doctor(territory, last_name="Muet", lat=50.6950, lon=2.8900)
    mobile = make_doctor(territory, last_name="Portable", phone="+33612345678",
                         preferred_channel="sms", lat=50.7000, lon=2.9000)  # fmt: skip
    ranking = rank_doctors(session, territory, request, utcnow())
    assert [c.doctor.id for c in ranking.candidates] == [near.id, landline.id, silent.id, mobile.id]
    assert [bool(c.unreachable) for c in ranking.candidates] == [False, True, True, False]

    auth.login(make_user(territory))
    page = html.unescape(client.get(f"/espace/demandes/{request.id}").get_data(as_text=True))
    rows = ranked_rows(page)
    # Same order as before; the reachable ones can be ticked, the others say why instead.
    names = [re.findall(r"Dr Alex (\w+)", row)[0] for row in rows]
    assert names == ["Proche", "Fixe", "Muet", "Portable"]
    for row, doctor in ((rows[0], near), (rows[3], mobile)):
        assert f'id="ask-{doctor.id}"' in row and "Injoignable" not in row
    assert 'name="doctor_ids"' not in rows[1] and 'name="doctor_ids"' not in rows[2]
    assert (
        "Injoignable : Dr Alex Fixe n'a pas d'e-mail et son numéro 03 20 82 01 99 n'est pas "
        "un portable : il ne peut pas recevoir de SMS." in rows[1]
    )
    assert "Injoignable : Dr Alex Muet n'a ni e-mail ni téléphone enregistré." in rows[2]
    assert f'href="/espace/medecins/{landline.id}"' in rows[1]  # where to add an e-mail
    assert "Solliciter les médecins cochés" in page
    # The coordinator may phone them and propose them to the patient all the same.
    proposal = proposal_fieldset(page)
    assert f'value="{landline.id}"' in proposal and f'value="{silent.id}"' in proposal


def test_when_no_ranked_doctor_can_be_reached_only_the_cascade_is_offered(
    client: FlaskClient,
    auth: AuthActions,
    make_territory: Callable[..., Territory],
    make_user: Callable[..., User],
    make_request: Callable[..., Request],
    make_doctor: Callable[..., Doctor],
) -> None:
    territory = make_territory()
    request = make_request(territory, lat=50.6880, lon=2.8800)
    make_doctor(territory, last_name="Fixe", phone=LANDLINE, lat=50.6900, lon=2.8830)
    auth.login(make_user(territory))
    page = html.unescape(client.get(f"/espace/demandes/{request.id}").get_data(as_text=True))
    [row] = ranked_rows(page)
    assert "Injoignable : Dr Alex Fixe" in row and 'name="doctor_ids"' not in row
    # No box to tick, so no button to send the ticked ones; the cascade passes over them.
    assert "Solliciter les médecins cochés" not in page
    assert "Lancer une cascade" in page
