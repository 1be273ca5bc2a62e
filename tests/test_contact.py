"""Phone numbers and e-mails as French (and Belgian) people write them."""

from __future__ import annotations

import pytest

from orientation.services.contact import (
    InvalidEmail,
    InvalidPhone,
    display_phone,
    normalise_email,
    normalise_phone,
)


@pytest.mark.parametrize(
    "typed",
    ["06 12 34 56 78", "06.12.34.56.78", "0612345678", "+33 6 12 34 56 78", "0033612345678",
     "+33 (0)6 12 34 56 78", "06-12-34-56-78"],
)  # fmt: skip
def test_french_habits_give_one_e164_number(typed: str) -> None:
    assert normalise_phone(typed) == "+33612345678"


def test_belgian_numbers_are_welcome_in_a_border_region() -> None:
    assert normalise_phone("+32 470 12 34 56") == "+32470123456"


@pytest.mark.parametrize("typed", ["06 12 34", "12345", "bonjour", "+1 202 555 0143", "09 99"])
def test_invalid_numbers_get_a_french_reason(typed: str) -> None:
    with pytest.raises(InvalidPhone) as raised:
        normalise_phone(typed)
    assert str(raised.value).startswith(("Ce numéro", "Indiquez"))


def test_a_landline_cannot_receive_sms() -> None:
    with pytest.raises(InvalidPhone, match="portable"):
        normalise_phone("03 20 12 34 56", mobile_only=True)


def test_display_is_the_national_format() -> None:
    assert display_phone("+33612345678") == "06 12 34 56 78"


@pytest.mark.parametrize("typed", ["jeanne@exemple.fr", " Jeanne.Martin@Exemple.FR "])
def test_valid_emails_are_kept(typed: str) -> None:
    assert normalise_email(typed).lower().endswith("@exemple.fr")


@pytest.mark.parametrize(
    "typed", ["jeanne", "jeanne@", "jeanne@exemple", "a b@exemple.fr", "@x.fr"]
)
def test_invalid_emails_get_a_french_reason(typed: str) -> None:
    with pytest.raises(InvalidEmail, match="pas valide"):
        normalise_email(typed)
