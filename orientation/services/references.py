"""Request references: short, easy to read over the phone, not guessable."""

from __future__ import annotations

import secrets

# Crockford's base32 alphabet: no I, L, O or U, so nothing reads as 1, 0 or a word.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CONFUSABLE = str.maketrans({"I": "1", "L": "1", "O": "0", "U": "V"})


def new_reference() -> str:
    """Eight random symbols (40 bits) shown as two groups: 'K7QM-4T2X'."""
    # One 40-bit draw cut into eight 5-bit symbols: the same randomness as eight
    # secrets.choice calls, for one call into the system's generator instead of eight.
    bits = secrets.randbits(40)
    symbols = "".join(ALPHABET[(bits >> shift) & 31] for shift in range(0, 40, 5))
    return f"{symbols[:4]}-{symbols[4:]}"


def normalise_reference(text: str) -> str:
    """What a person typed or read out ('k7qm 4t2x', 'K7QM4T2X') back to 'K7QM-4T2X'."""
    symbols = "".join(ch for ch in text.upper() if ch.isalnum()).translate(_CONFUSABLE)
    return f"{symbols[:4]}-{symbols[4:]}" if len(symbols) == 8 else symbols
