"""SMS length: GSM-7 or UCS-2, and how many segments a text costs.

One character outside the GSM 03.38 alphabet (an 'ê', a 'œ', a curly apostrophe) switches the
whole message to UCS-2, where a segment holds 70 characters instead of 160.
"""

from __future__ import annotations

from dataclasses import dataclass

# GSM 03.38 basic character set.
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Characters of the extension table: each costs two septets (escape + char).
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


@dataclass(frozen=True)
class SmsLength:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int
    non_gsm_characters: str  # the characters that forced UCS-2, to help shorten


def sms_length(text: str) -> SmsLength:
    """Encoding, length and number of segments of an SMS body."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
        single, multi, encoding, offenders = 160, 153, "GSM-7", ""
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, multi, encoding = 70, 67, "UCS-2"
        offenders = "".join(
            sorted({ch for ch in text if ch not in _GSM_BASIC and ch not in _GSM_EXTENDED})
        )
    if units <= single:
        segments, per_segment = (1 if units else 0), single
    else:
        segments, per_segment = -(-units // multi), multi
    return SmsLength(encoding, units, segments, per_segment, offenders)
