"""Insurer API keys: created in the insurer portal, shown once, only a hash stored.

A key reads ``fsk_<prefix>_<secret>``. The prefix is stored in clear (it names the key in lists and
logs and finds the row); the whole key is stored as SHA-256 (a long random secret needs no slow hash).
Keys are scoped, may expire, are revocable, and record when they were last used.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.models.identity import ApiKey

KEY_PREFIX = "fsk"
SCOPES = ("tenants:read",)
# Writing last_used_at on every call would turn reads into writes; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)
MAX_VALIDITY_DAYS = 730


class ApiKeyError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class NewKey:
    key: ApiKey
    plaintext: str  # shown to the person once, never stored


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    parts = token.strip().split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


async def create_key(
    session: AsyncSession,
    *,
    insurer_id: uuid.UUID,
    name: str,
    created_by: uuid.UUID | None,
    valid_days: int | None = 365,
    scopes: Sequence[str] = SCOPES,
) -> NewKey:
    name = name.strip()
    if not name or len(name) > 80:
        raise ApiKeyError("name")
    if valid_days is not None and not 1 <= valid_days <= MAX_VALIDITY_DAYS:
        raise ApiKeyError("validity")
    if any(s not in SCOPES for s in scopes) or not scopes:
        raise ApiKeyError("scope")
    prefix = secrets.token_hex(4)
    plaintext = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        insurer_id=insurer_id,
        prefix=prefix,
        secret_hash=_hash(plaintext),
        name=name,
        scopes=list(scopes),
        created_by_id=created_by,
        expires_at=datetime.now(UTC) + timedelta(days=valid_days) if valid_days else None,
    )
    session.add(key)
    await session.flush()
    await audit.record(
        session,
        "insurer.api_key_created",
        tenant_id=None,
        object_type="api_key",
        object_id=key.id,
        detail={"insurer_id": str(insurer_id), "prefix": prefix, "name": name, "scopes": list(scopes)},
    )
    return NewKey(key, plaintext)


async def list_keys(session: AsyncSession, insurer_id: uuid.UUID) -> Sequence[ApiKey]:
    stmt = select(ApiKey).where(ApiKey.insurer_id == insurer_id).order_by(ApiKey.created_at.desc())
    return (await session.execute(stmt)).scalars().all()


async def revoke_key(session: AsyncSession, *, insurer_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey | None:
    """Revoke one of this insurer's keys; ``None`` if it is not theirs (the route answers 404)."""
    key = (
        await session.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.insurer_id == insurer_id))
    ).scalar_one_or_none()
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await audit.record(
            session,
            "insurer.api_key_revoked",
            tenant_id=None,
            object_type="api_key",
            object_id=key.id,
            detail={"insurer_id": str(insurer_id), "prefix": key.prefix},
        )
    return key


async def authenticate(session: AsyncSession, token: str, *, now: datetime | None = None) -> ApiKey | None:
    """The usable key behind ``token``, or ``None`` (unknown, wrong secret, revoked or expired)."""
    parts = _split(token)
    if parts is None:
        return None
    key = (await session.execute(select(ApiKey).where(ApiKey.prefix == parts[0]))).scalar_one_or_none()
    now = now or datetime.now(UTC)
    if (
        key is None
        or not hmac.compare_digest(key.secret_hash, _hash(token.strip()))
        or not key.is_usable(now)
    ):
        return None
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        key.last_used_at = now
    return key
