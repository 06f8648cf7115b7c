"""Re-checking a stored signature, at any later time, against the audit chain — the one check behind
``portal verify-report``, the public verification pages, the public board and the commitment page.

A signature row and a passkey row are only rows: whoever can write to the database could change an answer,
sign the new hash with a key of their own and overwrite both. What they cannot do unnoticed is rewrite the
audit chain (hash-linked; on PostgreSQL the application's role cannot update or delete its entries). So
every fact the verdict rests on is read from the chain, whose entries from the first one relied upon to
the chain's head are re-hashed on every check:

- the hash fixed when the document was submitted (a report's ``selfcheck.submitted``; a commitment's last
  ``commitment.prepared`` before it was signed);
- the document's first "signed" entry, recording which passkey signed which hash, when, and the place and
  hash of that passkey's registration entry in the platform chain;
- that registration entry (which must still hash to what the signed entry recorded): the credential id,
  its owner and the fingerprint (SHA-256) of its public key.

Only the first entry of each kind counts: later ones are appended by someone, never a correction.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import verify_authentication_response
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AuthenticationCredential, AuthenticatorAssertionResponse

from portal.audit import services as audit
from portal.core.i18n import N_, _
from portal.identity import passkeys
from portal.models.identity import Passkey
from portal.models.selfcheck import Signature
from portal.selfcheck.signing.services import moment


@dataclass(frozen=True)
class Trail:
    """Where a kind of document leaves its traces in the tenant's audit chain."""

    object_type: str  # the entries' object_type (their object_id is the document's id)
    fixed_by: str  # the action whose ``sha256`` is the hash the signer had to sign
    signed_by: str  # the action whose ``signature`` records the signing


class Check(enum.StrEnum):
    """The checks, in the order they are made; a verdict names each one that failed."""

    CHAIN = "audit_chain"  # the chain entries relied upon are intact
    RECORDED = "recorded"  # the chain recorded this signature when it was made, as the row has it
    REGISTERED = "registered"  # the signing credential is a passkey of the signer, registered in the chain
    KEY = "key"  # the stored public keys have the fingerprint the registration recorded
    SIGNATURE = "signature"  # the assertion verifies under that key over the signed data
    FIXED = "fixed_hash"  # the signed hash is the one fixed at submission
    UNCHANGED = "unchanged"  # the document as stored now still has that hash


FAILURES = {
    Check.CHAIN: N_("The audit log entries this signature rests on have been altered."),
    Check.RECORDED: N_(
        "The stored signature is not the one the audit log recorded when the document was signed."
    ),
    Check.REGISTERED: N_(
        "The signing key is not a passkey the audit log records as registered to the signer."
    ),
    Check.KEY: N_("The stored public key is not the one recorded when the signer's passkey was registered."),
    Check.SIGNATURE: N_("The signature does not verify under the signer's public key."),
    Check.FIXED: N_("What was signed is not the document as fixed when it was submitted."),
    Check.UNCHANGED: N_(
        "The document as stored now differs from what was signed: the signature does not cover this version."
    ),
}


@dataclass(frozen=True)
class Verification:
    """The outcome of re-checking a stored signature against the chain and the document as it is now."""

    failures: tuple[Check, ...]  # empty: every check passed
    signer_name: str
    signed_at: datetime
    signed_sha256: str  # what the stored assertion signed
    fixed_sha256: str | None  # what the chain fixed at submission (None: it records none)
    current_sha256: str  # the document as stored now
    key_sha256: str | None  # the registered key's fingerprint, from the chain
    key_registered_at: datetime | None
    problem: str = ""  # the WebAuthn library's words when the assertion does not verify (CLI and log)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def signature_valid(self) -> bool:
        """Everything holds but possibly the document's current content."""
        return all(f is Check.UNCHANGED for f in self.failures)

    @property
    def unchanged(self) -> bool:
        return Check.UNCHANGED not in self.failures

    def messages(self) -> list[str]:
        """Each failed check in the current language."""
        return [_(FAILURES[f]) for f in self.failures]


async def verify_signature(
    session: AsyncSession, signature: Signature, current_sha256: str, trail: Trail
) -> Verification:
    """Re-check ``signature`` against the tenant's audit chain, the platform chain's registration of the
    signer's passkey, and the document's ``current_sha256``. Reads only; runs in the caller's scope (the
    registration entry is read in the system scope, as only it may)."""
    failed: set[Check] = set()
    actions = (trail.fixed_by, trail.signed_by)
    entries = await audit.entries_about(
        session, signature.tenant_id, trail.object_type, signature.document_id, actions
    )
    signed_entry = next((e for e in entries if e.action == trail.signed_by), None)
    before = signed_entry.seq if signed_entry is not None else None
    fixing = [e for e in entries if e.action == trail.fixed_by and (before is None or e.seq < before)]
    fixed_entry = fixing[-1] if fixing else None
    fixed_sha256 = (_text(fixed_entry.detail.get("sha256")) or None) if fixed_entry else None
    recorded: dict[str, Any] = {}
    if signed_entry is not None and isinstance(signed_entry.detail.get("signature"), dict):
        recorded = signed_entry.detail["signature"]

    relied = [e.seq for e in (fixed_entry, signed_entry) if e is not None]
    if relied and await audit.check_chain_from(session, str(signature.tenant_id), min(relied)) is not None:
        failed.add(Check.CHAIN)

    registration = await _registration(session, recorded)
    if registration is not None and (
        not registration.intact or registration.hash != _text(recorded["registration"].get("hash"))
    ):
        failed.add(Check.CHAIN)

    if not recorded or fixed_sha256 is None or not _row_is_recorded(signature, recorded):
        failed.add(Check.RECORDED)

    credential_id = bytes_to_base64url(signature.credential_id)
    if (
        registration is None
        or registration.credential_id != credential_id
        or registration.user_id != _text(recorded.get("signer_id"))
    ):
        failed.add(Check.REGISTERED)

    if registration is not None and not await _keys_registered(session, signature, registration):
        failed.add(Check.KEY)

    problem = _assertion_problem(signature)
    if problem:
        failed.add(Check.SIGNATURE)

    if fixed_sha256 is None or signature.sha256 != fixed_sha256:
        failed.add(Check.FIXED)
    if current_sha256 != (fixed_sha256 or signature.sha256):
        failed.add(Check.UNCHANGED)

    return Verification(
        failures=tuple(c for c in Check if c in failed),
        signer_name=signature.signer_name,
        signed_at=signature.signed_at,
        signed_sha256=signature.sha256,
        fixed_sha256=fixed_sha256,
        current_sha256=current_sha256,
        key_sha256=registration.key_sha256 if registration else None,
        key_registered_at=registration.at if registration else None,
        problem=problem,
    )


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


async def _registration(session: AsyncSession, recorded: dict[str, Any]) -> passkeys.Registration | None:
    """The registration entry the signed entry points at (``None``: it points nowhere that is one)."""
    ref = recorded.get("registration")
    seq = ref.get("seq") if isinstance(ref, dict) else None
    if not isinstance(seq, int) or isinstance(seq, bool):
        return None
    return await passkeys.registration_at(session, seq)


def _row_is_recorded(signature: Signature, recorded: dict[str, Any]) -> bool:
    """Whether the signature row says what the chain recorded when it was made."""
    return (
        recorded.get("sha256") == signature.sha256
        and recorded.get("credential_id") == bytes_to_base64url(signature.credential_id)
        and recorded.get("key_sha256") == passkeys.key_fingerprint(signature.public_key)
        and recorded.get("signer_name") == signature.signer_name
        and recorded.get("signed_at") == moment(signature.signed_at)
        # The signer's account may be gone since (the row's id is then empty); the name still counts.
        and (signature.signer_id is None or recorded.get("signer_id") == str(signature.signer_id))
    )


async def _keys_registered(
    session: AsyncSession, signature: Signature, registration: passkeys.Registration
) -> bool:
    """The signature's copy of the key, and the passkey row if it still exists, have the registered key."""
    if passkeys.key_fingerprint(signature.public_key) != registration.key_sha256:
        return False
    try:
        passkey_id = uuid.UUID(registration.passkey_id)
    except ValueError:
        return False
    passkey = await session.get(Passkey, passkey_id)
    return passkey is None or (
        passkeys.key_fingerprint(passkey.public_key) == registration.key_sha256
        and bytes_to_base64url(passkey.credential_id) == registration.credential_id
    )


def _assertion_problem(signature: Signature) -> str:
    """Repeat the WebAuthn verification of the stored assertion, offline ("" when it verifies)."""
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
        return str(exc) or type(exc).__name__
    return ""


__all__ = ["FAILURES", "Check", "Trail", "Verification", "verify_signature"]
