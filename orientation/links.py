"""Signed links for patients and doctors: one purpose, one subject, an expiry, no password.

A token is signed with the secret key and a salt per purpose, so a token made for one purpose
(say, a doctor's availability form) fails verification for any other (say, accepting a
patient). Tokens carry an id and a version number; bumping the version on the subject makes
earlier links unusable (single use where the purpose needs it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode


class LinkPurpose(enum.StrEnum):
    PATIENT_REQUEST = "patient-request"  # see, complete, withdraw one's request
    DOCTOR_AVAILABILITY = "doctor-availability"  # the six-month confirmation form
    DOCTOR_ANSWER = "doctor-answer"  # accept or decline one patient
    PATIENT_FOLLOW_UP = "patient-follow-up"  # 30 days after the proposal
    PATIENT_SURVEY = "patient-survey"  # the year-end satisfaction survey


# How long each kind of link stays valid.
LIFETIMES = {
    LinkPurpose.PATIENT_REQUEST: timedelta(days=365),
    LinkPurpose.DOCTOR_AVAILABILITY: timedelta(days=45),
    LinkPurpose.DOCTOR_ANSWER: timedelta(days=14),
    LinkPurpose.PATIENT_FOLLOW_UP: timedelta(days=60),
    LinkPurpose.PATIENT_SURVEY: timedelta(days=90),
}


class LinkInvalid(Exception):
    """Tampered, made for another purpose, or malformed."""


class LinkExpired(LinkInvalid):
    """Genuine but too old."""


@dataclass(frozen=True)
class LinkClaims:
    purpose: LinkPurpose
    subject_id: int
    version: int
    extra: str


class LinkSigner:
    """Makes and checks the tokens of signed links."""

    def __init__(self, secret_key: str) -> None:
        self._secret_key = secret_key
        # One serializer per purpose, made on first use: they are stateless once built, so a
        # submission (its private link) or a page (a link read) need not build one again.
        self._serializers: dict[LinkPurpose, URLSafeTimedSerializer] = {}

    def _serializer(self, purpose: LinkPurpose) -> URLSafeTimedSerializer:
        serializer = self._serializers.get(purpose)
        if serializer is None:
            serializer = URLSafeTimedSerializer(
                self._secret_key, salt=f"orientation-link:{purpose.value}"
            )
            self._serializers[purpose] = serializer
        return serializer

    def make(self, purpose: LinkPurpose, subject_id: int, version: int = 0, extra: str = "") -> str:
        """A URL-safe token for one subject (request, doctor, contact attempt...)."""
        return self._serializer(purpose).dumps([subject_id, version, extra])

    def read(self, purpose: LinkPurpose, token: str) -> LinkClaims:
        """The claims of a token made for this purpose; raise LinkExpired or LinkInvalid."""
        return self._claims(purpose, token, int(LIFETIMES[purpose].total_seconds()))

    def subject_of_expired(self, purpose: LinkPurpose, token: str) -> int | None:
        """The subject of a genuine link too old to open, else None: only to say whom to call
        on the "expired" page (the CPTS of that doctor). The link still changes nothing."""
        try:
            return self._claims(purpose, token, max_age=None).subject_id
        except LinkInvalid:
            return None

    def _claims(self, purpose: LinkPurpose, token: str, max_age: int | None) -> LinkClaims:
        try:
            payload = self._serializer(purpose).loads(token, max_age=max_age)
        except SignatureExpired:
            raise LinkExpired() from None
        except BadSignature:
            raise LinkInvalid() from None
        # The signature's last base64 character carries unused bits: several spellings decode
        # to the same bytes. Only the one we wrote opens the link, so that any change to a
        # link, even there, is refused as the page says.
        signature = token.rpartition(".")[2]
        if base64_encode(base64_decode(signature)).decode() != signature:
            raise LinkInvalid()
        if (
            not isinstance(payload, list)
            or len(payload) != 3
            or not isinstance(payload[0], int)
            or not isinstance(payload[1], int)
            or not isinstance(payload[2], str)
        ):
            raise LinkInvalid()
        return LinkClaims(purpose, payload[0], payload[1], payload[2])
