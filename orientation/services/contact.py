"""Phone numbers and e-mail addresses as people type them, checked and normalised.

French habits (06 12 34 56 78, 06.12.34.56.78, +33 6..., 0033 6...) and Belgian numbers (+32:
Hauts-de-France is a border region) are accepted; numbers are stored in E.164.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

ALLOWED_REGIONS = {"FR", "BE"}


class InvalidPhone(ValueError):
    pass


class InvalidEmail(ValueError):
    pass


def normalise_phone(text: str, *, mobile_only: bool = False) -> str:
    """'06 12 34 56 78' -> '+33612345678'; raise InvalidPhone with a French reason."""
    raw = text.strip()
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    try:
        number = phonenumbers.parse(raw, "FR")
    except phonenumbers.NumberParseException:
        raise InvalidPhone("Ce numéro de téléphone n'est pas lisible.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("Ce numéro de téléphone n'existe pas : vérifiez les chiffres.")
    region = phonenumbers.region_code_for_number(number)
    if region not in ALLOWED_REGIONS:
        raise InvalidPhone("Indiquez un numéro français ou belge.")
    if mobile_only and phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidPhone("Indiquez un numéro de portable pour recevoir des SMS.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)  # asked several times per submission; parsing is the costly part
def is_mobile(e164: str) -> bool:
    """True for a number that can receive SMS."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def display_phone(e164: str) -> str:
    """'+33612345678' -> '06 12 34 56 78' (national format for French numbers)."""
    if not e164:
        return ""
    number = phonenumbers.parse(e164, None)
    if phonenumbers.region_code_for_number(number) == "FR":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalise_email(text: str) -> str:
    """Check the syntax and the domain's form (no DNS look-up: it may be offline)."""
    try:
        result = validate_email(text.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise InvalidEmail(
            "Cette adresse e-mail n'est pas valide (exemple : prenom.nom@exemple.fr)."
        ) from None
    return result.normalized
