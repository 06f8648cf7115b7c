"""Passkeys (WebAuthn, ``webauthn`` 3.x): registration, the assertion ceremony (sign-in and document
signing), and a person's list of passkeys.

Discoverable credentials with user verification required; the RP ID and the expected origin come from the
settings (``rp_id``, ``base_url``). The checks every ceremony shares (single-use expiring challenge, origin,
RP ID, user verification) live in ``ceremonies.py``; here the sign counter is checked too, then the library
verifies in full. Revoked passkeys stay as rows: old report signatures are re-verified against them.

A registration is recorded in the platform audit chain with the credential id and the fingerprint of the
public key (SHA-256 of its COSE bytes): the chain, not the ``passkey`` row, is what a signature is later
checked against, so a key swapped in the database afterwards shows.

No HTTP here: the routes (``passkey_routes.py``) parse, call these functions and render.
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

import cbor2
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationFormat,
    AuthenticatorAssertionResponse,
    AuthenticatorSelectionCriteria,
    ClientDataType,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from portal.audit import services as audit
from portal.config import Settings
from portal.core.tenancy import Scope, scope_of, set_scope
from portal.identity.ceremonies import (
    ALGORITHMS,
    CHALLENGE_TTL_S,
    CREDENTIAL_ID_MAX,
    SESSION_KEY,
    Ceremony,
    PasskeyError,
    challenge_bytes,
    check_authenticator_data,
    check_client_data,
    take_ceremony,
)
from portal.models.audit import AuditEntry
from portal.models.identity import Passkey, User
from portal.models.tenants import Invitation

# The ceremony names the routes reach through this module (they live in ``ceremonies.py``).
__all__ = [
    "CHALLENGE_TTL_S",
    "SESSION_KEY",
    "Ceremony",
    "PasskeyError",
    "take_ceremony",
]

NAME_MAX = 80
# Signing in and adding a passkey only write non-tenant rows and platform-chain audit entries: a scope
# that sees no tenant at all is enough, and never more than that.
PLATFORM_ONLY = Scope.tenants(())


# -- registration -------------------------------------------------------------------------------------

ADDED = "auth.passkey_added"  # the registration's action in the platform audit chain


def key_fingerprint(public_key: bytes) -> str:
    """SHA-256 (hex) of a credential's COSE public key: what the audit chain records at registration."""
    return hashlib.sha256(public_key).hexdigest()


def registration_options(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    user_name: str,
    display_name: str,
    rp_name: str,
    exclude: Sequence[bytes] = (),
    binding: str = "",
    now: float | None = None,
) -> tuple[dict[str, Any], Ceremony]:
    """Options for ``navigator.credentials.create`` (as JSON-ready dict) and the ceremony to keep."""
    options = generate_registration_options(
        rp_id=settings.rp_id,
        rp_name=rp_name,
        user_name=user_name,
        user_id=user_id.bytes,
        user_display_name=display_name,
        timeout=CHALLENGE_TTL_S * 1000,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=c) for c in exclude],
        supported_pub_key_algs=ALGORITHMS,
    )
    ceremony = Ceremony(
        purpose="register",
        challenge=bytes_to_base64url(options.challenge),
        issued_at=time.time() if now is None else now,
        user_id=str(user_id),
        binding=binding,
        display_name=display_name,
    )
    return json.loads(options_to_json(options)), ceremony


@dataclass(frozen=True)
class NewCredential:
    """A verified registration, ready to be stored for ``user_id``."""

    user_id: uuid.UUID
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: str
    backed_up: bool
    transports: list[str]


def verify_registration(settings: Settings, ceremony: Ceremony, credential: Any) -> NewCredential:
    """Check a ``navigator.credentials.create`` response against the ceremony it answers."""
    try:
        parsed = parse_registration_credential_json(credential)
    except WebAuthnException as exc:
        raise PasskeyError("invalid", str(exc)) from exc
    check_client_data(
        parsed.response.client_data_json, ClientDataType.WEBAUTHN_CREATE, ceremony, settings.base_url
    )
    # WebAuthn L3 section 7.1 step 25: a credential id longer than 1023 bytes is refused.
    if len(parsed.raw_id) > CREDENTIAL_ID_MAX:
        raise PasskeyError("invalid", f"credential id of {len(parsed.raw_id)} bytes")
    try:
        attestation = parse_attestation_object(parsed.response.attestation_object)
        raw_statement = cbor2.loads(parsed.response.attestation_object).get("attStmt")
    except Exception as exc:
        raise PasskeyError("invalid", "attestationObject is malformed") from exc
    # "none" attestation (all we ask for) carries an empty statement (section 8.7): anything else is a lie.
    if attestation.fmt == AttestationFormat.NONE and raw_statement != {}:
        raise PasskeyError("invalid", "a none attestation with a statement")
    check_authenticator_data(attestation.auth_data, settings.rp_id)
    try:
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=challenge_bytes(ceremony),
            expected_rp_id=settings.rp_id,
            expected_origin=settings.base_url,
            require_user_verification=True,
            supported_pub_key_algs=ALGORITHMS,
        )
    except WebAuthnException as exc:
        raise PasskeyError("invalid", str(exc)) from exc
    flags = attestation.auth_data.flags
    return NewCredential(
        user_id=uuid.UUID(ceremony.user_id),
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        aaguid=verified.aaguid,
        backed_up=bool(flags.bs),
        transports=[t.value for t in parsed.response.transports or []],
    )


async def add_passkey(session: AsyncSession, credential: NewCredential, *, name: str) -> Passkey:
    """Store a verified credential for its user (who must exist by now)."""
    await ensure_scope(session)
    name = _clean_name(name)
    taken = (
        await session.execute(select(Passkey.id).where(Passkey.credential_id == credential.credential_id))
    ).first()
    if taken:
        raise PasskeyError("duplicate", "this credential is already registered")
    passkey = Passkey(
        user_id=credential.user_id,
        credential_id=credential.credential_id,
        public_key=credential.public_key,
        sign_count=credential.sign_count,
        transports=credential.transports,
        name=name,
        aaguid=credential.aaguid,
        backed_up=credential.backed_up,
    )
    session.add(passkey)
    await session.flush()
    await audit.record(
        session,
        ADDED,
        tenant_id=None,
        object_type="passkey",
        object_id=passkey.id,
        detail={
            "user_id": str(credential.user_id),
            "name": name,
            "aaguid": credential.aaguid,
            "credential_id": bytes_to_base64url(credential.credential_id),
            "key_sha256": key_fingerprint(credential.public_key),
        },
    )
    return passkey


@dataclass(frozen=True)
class Registration:
    """A passkey's registration as the platform audit chain recorded it."""

    seq: int  # the entry's place in the platform chain
    hash: str  # the entry's hash as stored
    intact: bool  # the entry's content still matches that hash
    at: datetime
    passkey_id: str
    user_id: str
    credential_id: str  # base64url
    key_sha256: str


def _registration(entry: AuditEntry | None) -> Registration | None:
    """``None`` unless ``entry`` records a registration with its key (those before the key was recorded
    do not: such a passkey cannot sign)."""
    if entry is None or entry.action != ADDED or entry.object_type != "passkey":
        return None
    detail = entry.detail or {}
    if not detail.get("key_sha256") or not detail.get("credential_id"):
        return None
    return Registration(
        seq=entry.seq,
        hash=entry.hash,
        intact=audit.entry_hash(entry) == entry.hash,
        at=entry.at,
        passkey_id=entry.object_id,
        user_id=str(detail.get("user_id", "")),
        credential_id=str(detail["credential_id"]),
        key_sha256=str(detail["key_sha256"]),
    )


async def registration_of(session: AsyncSession, passkey_id: uuid.UUID) -> Registration | None:
    """The passkey's registration in the platform chain (the first entry: a later one cannot replace it)."""
    return _registration(await audit.first_platform_entry(session, ADDED, "passkey", passkey_id))


async def registration_at(session: AsyncSession, seq: int) -> Registration | None:
    """The registration at ``seq`` of the platform chain (where a signature's audit entry points)."""
    return _registration(await audit.platform_entry_at(session, seq))


# -- sign-in ------------------------------------------------------------------------------------------


def authentication_options(
    settings: Settings,
    *,
    challenge: bytes | None = None,
    allow: Sequence[bytes] = (),
    purpose: str = "signin",
    binding: str = "",
    now: float | None = None,
) -> tuple[dict[str, Any], Ceremony]:
    """Options for ``navigator.credentials.get`` and the ceremony to keep. Sign-in: a random challenge and
    no allow-list (the authenticator offers its passkeys). Signing a document: its hash as the challenge
    and the signer's own credentials."""
    options = generate_authentication_options(
        rp_id=settings.rp_id,
        challenge=challenge,
        timeout=CHALLENGE_TTL_S * 1000,
        allow_credentials=[PublicKeyCredentialDescriptor(id=c) for c in allow],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    ceremony = Ceremony(
        purpose=purpose,
        challenge=bytes_to_base64url(options.challenge),
        issued_at=time.time() if now is None else now,
        binding=binding,
    )
    return json.loads(options_to_json(options)), ceremony


@dataclass(frozen=True)
class Assertion:
    """A verified ``navigator.credentials.get`` answer: whose passkey, and the parts the browser sent."""

    user: User
    passkey: Passkey
    response: AuthenticatorAssertionResponse


async def verify_assertion(
    session: AsyncSession,
    settings: Settings,
    ceremony: Ceremony,
    credential: Any,
    *,
    user_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> Assertion:
    """The assertion ceremony, one for sign-in and for signing: check the answer to ``ceremony`` and record
    the passkey's new counter and use. ``user_id``: the person was known before (signing), and only their
    own passkeys count; without it (sign-in) the credential names its account. Raises :class:`PasskeyError`.
    """
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

    await ensure_scope(session)
    passkey = (
        await session.execute(select(Passkey).where(Passkey.credential_id == parsed.raw_id))
    ).scalar_one_or_none()
    # Someone else's passkey is as unknown as a made-up one.
    if passkey is None or passkey.revoked_at is not None or user_id not in (None, passkey.user_id):
        raise PasskeyError("unknown_credential", "no active passkey of this person with this credential id")
    user = await session.get(User, passkey.user_id)
    if user is None or not user.active:
        raise PasskeyError("unknown_credential", "the passkey's account is closed")
    # WebAuthn L3 section 7.2 step 6: when the person was not identified first (discoverable sign-in) the
    # user handle is required; whenever it is present it must name the credential's account.
    handle = response.user_handle
    if (user_id is None and handle is None) or handle not in (None, user.id.bytes):
        raise PasskeyError("unknown_credential", "user handle missing or not the credential's account")
    # A counter that does not move forward (while either side is non-zero) betrays a cloned authenticator.
    if (auth_data.sign_count or passkey.sign_count) and auth_data.sign_count <= passkey.sign_count:
        raise PasskeyError("counter", f"sign count {auth_data.sign_count} after {passkey.sign_count}")
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=challenge_bytes(ceremony),
            expected_rp_id=settings.rp_id,
            expected_origin=settings.base_url,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise PasskeyError("invalid", str(exc)) from exc
    passkey.sign_count = verified.new_sign_count
    passkey.last_used_at = now or datetime.now(UTC)
    passkey.backed_up = verified.credential_backed_up
    await session.flush()
    return Assertion(user, passkey, response)


@dataclass(frozen=True)
class SignedIn:
    user: User
    passkey: Passkey


async def authenticate(
    session: AsyncSession, settings: Settings, ceremony: Ceremony, credential: Any
) -> SignedIn:
    """Sign in with a ``navigator.credentials.get`` answer, and record it in the platform chain."""
    assertion = await verify_assertion(session, settings, ceremony, credential)
    user, passkey = assertion.user, assertion.passkey
    with audit.acting_as(
        audit.Actor(
            label=f"{user.display_name} ({user.login})",
            user_id=user.id,
            ip=audit.current_actor().ip,
            request_id=audit.current_actor().request_id,
        )
    ):
        await audit.record(
            session,
            "auth.signed_in",
            tenant_id=None,
            object_type="passkey",
            object_id=passkey.id,
            detail={"method": "passkey", "user_id": str(user.id)},
        )
    return SignedIn(user, passkey)


# -- a person's passkeys ------------------------------------------------------------------------------


def _clean_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_MAX:
        raise PasskeyError("name", "a passkey name has 1 to 80 characters")
    return name


async def ensure_scope(session: AsyncSession) -> None:
    # A signed-out visitor's session has no scope; audit entries still need one to be flushed.
    if scope_of(session) is None:
        await set_scope(session, PLATFORM_ONLY)


async def list_passkeys(session: AsyncSession, user_id: uuid.UUID) -> Sequence[Passkey]:
    """The person's active passkeys, oldest first."""
    stmt = (
        select(Passkey)
        .where(Passkey.user_id == user_id, Passkey.revoked_at.is_(None))
        .order_by(Passkey.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


async def credential_ids(session: AsyncSession, user_id: uuid.UUID) -> list[bytes]:
    """Every credential id of the person (so the browser does not register one authenticator twice)."""
    stmt = select(Passkey.credential_id).where(Passkey.user_id == user_id, Passkey.revoked_at.is_(None))
    return list((await session.execute(stmt)).scalars().all())


async def _own(session: AsyncSession, user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey | None:
    return (
        await session.execute(
            select(Passkey).where(
                Passkey.id == passkey_id, Passkey.user_id == user_id, Passkey.revoked_at.is_(None)
            )
        )
    ).scalar_one_or_none()


async def rename_passkey(
    session: AsyncSession, user_id: uuid.UUID, passkey_id: uuid.UUID, name: str
) -> Passkey | None:
    """Rename one of the person's own passkeys; ``None`` if it is not theirs (the route answers 404)."""
    passkey = await _own(session, user_id, passkey_id)
    if passkey is None:
        return None
    name = _clean_name(name)
    if name != passkey.name:
        old, passkey.name = passkey.name, name
        await session.flush()
        await audit.record(
            session,
            "auth.passkey_renamed",
            tenant_id=None,
            object_type="passkey",
            object_id=passkey.id,
            detail={"user_id": str(user_id), "from": old, "to": name},
        )
    return passkey


async def other_way_in(session: AsyncSession, user_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    """Whether the person could still sign in without any passkey: a pending recovery invitation."""
    now = now or datetime.now(UTC)
    pending = (
        await session.execute(
            select(Invitation.id)
            .where(
                Invitation.for_user_id == user_id,
                Invitation.accepted_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .limit(1)
        )
    ).first()
    return pending is not None


async def can_revoke_any(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """False when revoking a passkey would lock the person out (their only one, and no other way in)."""
    count = (
        await session.execute(
            select(func.count())
            .select_from(Passkey)
            .where(Passkey.user_id == user_id, Passkey.revoked_at.is_(None))
        )
    ).scalar_one()
    return count > 1 or await other_way_in(session, user_id)


async def revoke_passkey(session: AsyncSession, user_id: uuid.UUID, passkey_id: uuid.UUID) -> Passkey | None:
    """Revoke one of the person's own passkeys, never the last way in; ``None`` if it is not theirs."""
    passkey = await _own(session, user_id, passkey_id)
    if passkey is None:
        return None
    if not await can_revoke_any(session, user_id):
        raise PasskeyError("last_passkey", "this is the person's only way in")
    passkey.revoked_at = datetime.now(UTC)
    await session.flush()
    await audit.record(
        session,
        "auth.passkey_revoked",
        tenant_id=None,
        object_type="passkey",
        object_id=passkey.id,
        detail={"user_id": str(user_id), "name": passkey.name},
    )
    return passkey


async def revoke_all(session: AsyncSession, user_id: uuid.UUID, *, reason: str) -> int:
    """Revoke every active passkey of the person and void their sessions (recovery of a lost device)."""
    now = datetime.now(UTC)
    result = await session.execute(
        update(Passkey)
        .where(Passkey.user_id == user_id, Passkey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session="fetch")
    )
    user = await session.get(User, user_id)
    if user is not None:
        user.sessions_valid_after = now
    await session.flush()
    count = int(getattr(result, "rowcount", 0) or 0)
    await audit.record(
        session,
        "auth.passkeys_revoked_all",
        tenant_id=None,
        object_type="user",
        object_id=user_id,
        detail={"count": count, "reason": reason},
    )
    return count
