"""Signing a document with a passkey.

The document is reduced to the SHA-256 of its canonical JSON; that hash *is* the WebAuthn challenge, so the
authenticator's signature covers the document itself (through ``clientDataJSON``). The ceremony is the one
sign-in uses (``identity.passkeys.verify_assertion``: single-use, expiring, the right origin and RP ID, user
verification, a counter that moves forward), limited to the signer's own active passkeys. The assertion is
kept whole in a :class:`Signature` row with a copy of the public key, the RP ID and the origin.

The row alone proves nothing to someone who could write to the database: they could sign something else
with a key of their own and overwrite it. So a signature is bound to the audit chain when it is made: the
passkey must have been registered in the platform chain with its key's fingerprint, and :func:`sign`
returns the *evidence* (who, which registered key, which hash, when, and the registration entry's place and
hash) that the document's "signed" entry in the tenant chain records. ``verification.py`` checks a stored
signature against the chain.

No HTTP here: ``routes.py`` holds the two endpoints' shared half.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn.helpers import bytes_to_base64url

from portal.config import Settings
from portal.identity import passkeys
from portal.identity.ceremonies import Ceremony, PasskeyError, challenge_bytes
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


def moment(at: datetime) -> str:
    """A time as the audit chain records it (UTC, microseconds), so that it compares exactly later."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


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
    return passkeys.authentication_options(
        settings,
        challenge=bytes.fromhex(document.sha256),
        allow=credential_ids,
        purpose=PURPOSE,
        binding=document.binding,
        now=now,
    )


@dataclass(frozen=True)
class Signed:
    """A stored signature and what the document's "signed" audit entry records about it (``signature``
    in its detail): the chain's word on which registered key signed which hash, for later checks."""

    signature: Signature
    evidence: dict[str, Any]


async def sign(
    session: AsyncSession,
    settings: Settings,
    ceremony: Ceremony,
    credential: Any,
    *,
    document: Document,
    signer: User,
    now: datetime | None = None,
) -> Signed:
    """Verify the signer's assertion over ``document`` and store it. Raises :class:`PasskeyError`:
    ``unregistered`` when the passkey's registration in the audit chain does not record this key."""
    if challenge_bytes(ceremony) != bytes.fromhex(document.sha256):
        raise PasskeyError("challenge", "the document changed since the signing request")
    now = now or datetime.now(UTC)
    assertion = await passkeys.verify_assertion(
        session, settings, ceremony, credential, user_id=signer.id, now=now
    )
    passkey, response = assertion.passkey, assertion.response
    key_sha256 = passkeys.key_fingerprint(passkey.public_key)
    registration = await passkeys.registration_of(session, passkey.id)
    if (
        registration is None
        or not registration.intact
        or registration.key_sha256 != key_sha256
        or registration.credential_id != bytes_to_base64url(passkey.credential_id)
        or registration.user_id != str(signer.id)
    ):
        raise PasskeyError("unregistered", "the audit chain does not record this passkey's key")
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
    evidence = {
        "sha256": document.sha256,
        "signer_id": str(signer.id),
        "signer_name": signer.display_name,
        "signed_at": moment(now),
        "passkey_id": str(passkey.id),
        "credential_id": registration.credential_id,
        "key_sha256": key_sha256,
        "registration": {"seq": registration.seq, "hash": registration.hash},
    }
    return Signed(signature, evidence)


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
