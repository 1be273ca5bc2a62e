"""SMS segment counting and message templates."""

from __future__ import annotations

import pytest

from models import Channel
from notifications.sms import sms_length
from notifications.templates import MessageTemplateError, render_message


def test_plain_french_without_circumflex_fits_gsm_7() -> None:
    length = sms_length("Bonjour, votre demande est enregistrée. Référence K7QM-4T2X.")
    assert (length.encoding, length.segments, length.per_segment) == ("GSM-7", 1, 160)


def test_one_e_circumflex_switches_to_ucs_2_and_is_named() -> None:
    text = "Votre médecin : Dr Lefèvre, 12 rue de la Gare. Il peut être joint au 03 20 00 00 00."
    length = sms_length(text)
    assert length.encoding == "UCS-2"
    assert length.segments == 2 and length.per_segment == 67
    assert "ê" in length.non_gsm_characters


def test_long_gsm_text_counts_153_per_segment() -> None:
    assert sms_length("a" * 161).segments == 2
    assert sms_length("a" * 306).segments == 2
    assert sms_length("a" * 307).segments == 3


def test_euro_sign_costs_two_septets() -> None:
    assert sms_length("€" * 80).segments == 1
    assert sms_length("€" * 81).segments == 2


def test_an_admin_template_cannot_reach_python_internals() -> None:
    hostile = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(MessageTemplateError):
        render_message("x", Channel.SMS, {}, override=hostile)


def test_an_unknown_variable_is_an_error_not_a_blank() -> None:
    with pytest.raises(MessageTemplateError, match="reference"):
        render_message("x", Channel.SMS, {}, override="Réf. {{ reference }}")


def test_email_subject_comes_from_the_first_line() -> None:
    rendered = render_message(
        "x", Channel.EMAIL, {"ref": "AB12-CD34"}, override="Objet: Demande {{ ref }}\n\nBonjour"
    )
    assert rendered.subject == "Demande AB12-CD34" and rendered.body == "Bonjour"
