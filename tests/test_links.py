"""Signed links: tampered, expired or other-purpose tokens are refused."""

from __future__ import annotations

import string
import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from orientation.links import LinkExpired, LinkInvalid, LinkPurpose, LinkSigner

SIGNER = LinkSigner("secret-" + "k" * 40)


def test_a_token_reads_back_its_subject_and_version() -> None:
    token = SIGNER.make(LinkPurpose.DOCTOR_AVAILABILITY, 42, version=3, extra="campaign-2026-1")
    claims = SIGNER.read(LinkPurpose.DOCTOR_AVAILABILITY, token)
    assert (claims.subject_id, claims.version, claims.extra) == (42, 3, "campaign-2026-1")


def test_a_token_made_for_one_purpose_is_refused_for_another() -> None:
    token = SIGNER.make(LinkPurpose.DOCTOR_AVAILABILITY, 42)
    with pytest.raises(LinkInvalid):
        SIGNER.read(LinkPurpose.DOCTOR_ANSWER, token)


def test_a_tampered_token_is_refused() -> None:
    token = SIGNER.make(LinkPurpose.PATIENT_REQUEST, 7)
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(LinkInvalid):
        SIGNER.read(LinkPurpose.PATIENT_REQUEST, tampered)


def test_a_token_of_another_secret_is_refused() -> None:
    token = LinkSigner("another-" + "s" * 40).make(LinkPurpose.PATIENT_REQUEST, 7)
    with pytest.raises(LinkInvalid):
        SIGNER.read(LinkPurpose.PATIENT_REQUEST, token)


def test_an_expired_token_is_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    token = SIGNER.make(LinkPurpose.DOCTOR_ANSWER, 5)
    later = time.time() + 15 * 24 * 3600  # DOCTOR_ANSWER lives 14 days
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(LinkExpired):
        SIGNER.read(LinkPurpose.DOCTOR_ANSWER, token)


def test_a_well_signed_token_with_a_foreign_payload_is_refused() -> None:
    forged = URLSafeTimedSerializer(
        "secret-" + "k" * 40, salt="orientation-link:patient-request"
    ).dumps({"id": 1})
    with pytest.raises(LinkInvalid):
        SIGNER.read(LinkPurpose.PATIENT_REQUEST, forged)


def test_every_other_spelling_of_the_last_character_is_refused() -> None:
    # A tester changed a doctor's link's last letter and the page still opened: base64's last
    # character has spare bits. Every other character there must be refused.
    signer = LinkSigner("k" * 32)
    alphabet = string.ascii_letters + string.digits + "-_"
    for subject in range(1, 40):
        token = signer.make(LinkPurpose.DOCTOR_AVAILABILITY, subject)
        opened = []
        for letter in alphabet:
            try:
                signer.read(LinkPurpose.DOCTOR_AVAILABILITY, token[:-1] + letter)
                opened.append(letter)
            except LinkInvalid:
                pass
        assert opened == [token[-1]]
