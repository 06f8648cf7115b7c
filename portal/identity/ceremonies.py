"""The checks every WebAuthn ceremony shares: sign-in, registration and document signing.

A ceremony's challenge lives in the server-side session with the time it was issued (:class:`Ceremony`);
the route pops it before verifying, so every challenge is single-use and expires after
:data:`CHALLENGE_TTL_S`. The response is checked step by step (challenge, origin, RP ID, user
verification) so that each refusal has its own translated message before the library verifies it in full.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any

from webauthn import base64url_to_bytes
from webauthn.helpers import parse_client_data_json
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import AuthenticatorData, ClientDataType

CHALLENGE_TTL_S = 300  # a ceremony not finished within 5 minutes starts again
SESSION_KEY = "webauthn"  # where the routes keep the pending ceremony in the server-side session
# Algorithms we accept: ES256 (every platform authenticator), EdDSA, RS256 (Windows Hello).
ALGORITHMS = [
    COSEAlgorithmIdentifier.ECDSA_SHA_256,
    COSEAlgorithmIdentifier.EDDSA,
    COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
]


# WebAuthn L3 section 7.1 step 25: longer credential ids are refused.
CREDENTIAL_ID_MAX = 1023
# A ceremony's JSON (a credential with its attestation or assertion) is a few kilobytes; bigger is not one.
CEREMONY_BODY_MAX = 64 * 1024


class PasskeyError(ValueError):
    """A refused ceremony or a broken rule; ``code`` names it for a translated message.

    Codes: ``challenge`` (none pending, expired or already used), ``origin``, ``rp_id``,
    ``user_verification``, ``counter``, ``unknown_credential``, ``duplicate``, ``invalid`` (anything else
    the verification refuses), ``name``, ``last_passkey``, ``unregistered`` (signing with a passkey whose
    registration in the audit chain does not record its key).
    """

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


@dataclass(frozen=True)
class Ceremony:
    """A pending registration or sign-in, kept in the session until its response arrives (once)."""

    purpose: str  # "register" | "signin"
    challenge: str  # base64url
    issued_at: float  # unix seconds
    user_id: str = ""  # registration: the account the new credential belongs to
    binding: str = ""  # what else it is bound to, e.g. an invitation's token hash
    display_name: str = ""

    def to_session(self) -> dict[str, Any]:
        return asdict(self)


def take_ceremony(
    raw: Any, purpose: str, *, binding: str = "", now: float | None = None, ttl: float = CHALLENGE_TTL_S
) -> Ceremony:
    """The ceremony popped from the session, if it is the one expected and still fresh."""
    if not isinstance(raw, dict):
        raise PasskeyError("challenge", "no ceremony pending (never started or already used)")
    try:
        ceremony = Ceremony(**raw)
    except TypeError as exc:
        raise PasskeyError("challenge", "malformed ceremony") from exc
    now = time.time() if now is None else now
    if ceremony.purpose != purpose or ceremony.binding != binding:
        raise PasskeyError("challenge", "the pending ceremony is for something else")
    if not 0 <= now - ceremony.issued_at <= ttl:
        raise PasskeyError("challenge", "the challenge expired")
    return ceremony


def challenge_bytes(ceremony: Ceremony) -> bytes:
    return base64url_to_bytes(ceremony.challenge)


def check_client_data(raw: bytes, expected_type: ClientDataType, ceremony: Ceremony, origin: str) -> None:
    try:
        client_data = parse_client_data_json(raw)
    except Exception as exc:  # the helper raises several kinds on garbage
        raise PasskeyError("invalid", "clientDataJSON is malformed") from exc
    if client_data.type != expected_type:
        raise PasskeyError("invalid", f"unexpected client data type {client_data.type}")
    if client_data.challenge != challenge_bytes(ceremony):
        raise PasskeyError("challenge", "the response answers another challenge")
    if client_data.origin != origin:
        raise PasskeyError("origin", f"response from origin {client_data.origin!r}")
    if client_data.cross_origin:
        raise PasskeyError("origin", "cross-origin ceremony")


def check_authenticator_data(auth_data: AuthenticatorData, rp_id: str) -> None:
    if auth_data.rp_id_hash != hashlib.sha256(rp_id.encode()).digest():
        raise PasskeyError("rp_id", "the credential is scoped to another RP ID")
    if not auth_data.flags.uv:
        raise PasskeyError("user_verification", "the authenticator did not verify the user")
