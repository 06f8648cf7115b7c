"""Signing a document with a passkey, and re-verifying the signature at any later time.

The document is reduced to the SHA-256 of its canonical JSON; that hash *is* the WebAuthn challenge, so the
authenticator's signature covers the document itself (through ``clientDataJSON``). The assertion is kept
whole in a :class:`Signature` row with a copy of the public key, the RP ID and the origin, so that anyone
can re-check it later without trusting the portal's word: :func:`verify` repeats the WebAuthn verification
and compares the signed hash with the hash of the document as it is now.

The ceremony itself is held to the same rules as sign-in (``core/auth/ceremonies.py``): single-use,
expiring, the right origin and RP ID, user verification. The credential must be one of the signer's own
active passkeys, and its counter must move forward.

No HTTP here: ``signing_routes.py`` and ``commitment_routes.py`` parse, call these functions and render.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import generate_authentication_options, options_to_json, verify_authentication_response
from webauthn.helpers import (
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_authenticator_data,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorAssertionResponse,
    ClientDataType,
    PublicKeyCredentialDescriptor,
    UserVerificationRequirement,
)

from portal.config import Settings
from portal.identity.ceremonies import (
    CHALLENGE_TTL_S,
    Ceremony,
    PasskeyError,
    challenge_bytes,
    check_authenticator_data,
    check_client_data,
)
from portal.models.identity import Passkey, User
from portal.models.selfcheck import DocumentType, Signature

PURPOSE = "sign"


@dataclass(frozen=True)
class Document:
    """What is being signed: its kind, id, tenant, and the hash of its canonical JSON."""

    type: DocumentType
    id: uuid.UUID
    tenant_id: uuid.UUID
    sha256: str

    @property
    def binding(self) -> str:
        # The ceremony is bound to this document *and* this hash: options fetched before a change are void.
        return f"{self.type.value}:{self.id}:{self.sha256}"


def canonical_hash(document: dict[str, object]) -> str:
    """SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) — the challenge the signer signs."""
    body = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


async def signer_credentials(session: AsyncSession, user_id: uuid.UUID) -> list[bytes]:
    rows = await session.execute(
        select(Passkey.credential_id).where(Passkey.user_id == user_id, Passkey.revoked_at.is_(None))
    )
    return list(rows.scalars())


def signing_options(
    settings: Settings, document: Document, credential_ids: Sequence[bytes], *, now: float | None = None
) -> tuple[dict[str, Any], Ceremony]:
    """Options for ``navigator.credentials.get`` whose challenge is the document's hash, limited to the
    signer's own passkeys (so the device offers only those)."""
    challenge = bytes.fromhex(document.sha256)
    options = generate_authentication_options(
        rp_id=settings.rp_id,
        challenge=challenge,
        timeout=CHALLENGE_TTL_S * 1000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in credential_ids],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    ceremony = Ceremony(
        purpose=PURPOSE,
        challenge=bytes_to_base64url(challenge),
        issued_at=time.time() if now is None else now,
        binding=document.binding,
    )
    return json.loads(options_to_json(options)), ceremony


async def sign(
    session: AsyncSession,
    settings: Settings,
    ceremony: Ceremony,
    credential: Any,
    *,
    document: Document,
    signer: User,
    now: datetime | None = None,
) -> Signature:
    """Verify the signer's assertion over ``document`` and store it. Raises :class:`PasskeyError`."""
    if challenge_bytes(ceremony) != bytes.fromhex(document.sha256):
        raise PasskeyError("challenge", "the document changed since the signing request")
    try:
        parsed = parse_authentication_credential_json(credential)
    except WebAuthnException as exc:
        raise PasskeyError("invalid", str(exc)) from exc
    response = parsed.response
    check_client_data(response.client_data_json, ClientDataType.WEBAUTHN_GET, ceremony, settings.base_url)
    try:
        auth_data = parse_authenticator_data(response.authenticator_data)
    except Exception as exc:  # the parser raises several kinds on garbage
        raise PasskeyError("invalid", "authenticatorData is malformed") from exc
    check_authenticator_data(auth_data, settings.rp_id)

    passkey = (
        await session.execute(select(Passkey).where(Passkey.credential_id == parsed.raw_id))
    ).scalar_one_or_none()
    # Someone else's passkey is as unknown as a made-up one: only the signer's own may sign.
    if passkey is None or passkey.revoked_at is not None or passkey.user_id != signer.id:
        raise PasskeyError("unknown_credential", "not an active passkey of the signer")
    if (auth_data.sign_count or passkey.sign_count) and auth_data.sign_count <= passkey.sign_count:
        raise PasskeyError("counter", f"sign count {auth_data.sign_count} after {passkey.sign_count}")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=bytes.fromhex(document.sha256),
            expected_rp_id=settings.rp_id,
            expected_origin=settings.base_url,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise PasskeyError("invalid", str(exc)) from exc
    now = now or datetime.now(UTC)
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = now
    signature = Signature(
        tenant_id=document.tenant_id,
        document_type=document.type,
        document_id=document.id,
        sha256=document.sha256,
        signer_id=signer.id,
        signer_name=signer.display_name,
        passkey_id=passkey.id,
        credential_id=passkey.credential_id,
        public_key=passkey.public_key,
        authenticator_data=response.authenticator_data,
        client_data_json=response.client_data_json,
        signature=response.signature,
        user_handle=response.user_handle,
        rp_id=settings.rp_id,
        origin=settings.base_url,
        signed_at=now,
    )
    session.add(signature)
    await session.flush()
    return signature


async def signature_of(
    session: AsyncSession, document_type: DocumentType, document_id: uuid.UUID
) -> Signature | None:
    return (
        await session.execute(
            select(Signature).where(
                Signature.document_type == document_type, Signature.document_id == document_id
            )
        )
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Verification:
    """The outcome of re-checking a stored signature against the document as it is now."""

    signature_valid: bool  # the assertion verifies against the stored public key and the signed hash
    unchanged: bool  # the document's hash now equals the signed hash
    signed_sha256: str
    current_sha256: str
    signer_name: str
    signed_at: datetime
    problem: str = ""  # why the signature does not verify (for the CLI and the log, not for the public)

    @property
    def ok(self) -> bool:
        return self.signature_valid and self.unchanged


def verify(signature: Signature, current_sha256: str) -> Verification:
    """Repeat the WebAuthn verification of a stored assertion, offline (no session, no counter state)."""
    problem = ""
    try:
        verify_authentication_response(
            credential=AuthenticationCredential(
                id=bytes_to_base64url(signature.credential_id),
                raw_id=signature.credential_id,
                response=AuthenticatorAssertionResponse(
                    client_data_json=signature.client_data_json,
                    authenticator_data=signature.authenticator_data,
                    signature=signature.signature,
                    user_handle=signature.user_handle,
                ),
            ),
            expected_challenge=bytes.fromhex(signature.sha256),
            expected_rp_id=signature.rp_id,
            expected_origin=signature.origin,
            credential_public_key=signature.public_key,
            # The counter was checked when the signature was made; re-verification checks the maths only.
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError) as exc:
        problem = str(exc) or type(exc).__name__
    return Verification(
        signature_valid=not problem,
        unchanged=current_sha256 == signature.sha256,
        signed_sha256=signature.sha256,
        current_sha256=current_sha256,
        signer_name=signature.signer_name,
        signed_at=signature.signed_at,
        problem=problem,
    )
