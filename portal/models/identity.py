"""Identity tables: people, their passkeys, the database session store, insurer API keys."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base

if TYPE_CHECKING:  # relationships resolve by class name on the shared registry
    from portal.models.tenants import Membership


class Passkey(Base):
    """A WebAuthn credential (discoverable, user-verified). A person may hold several; revoked ones stay
    as history so that old report signatures can still be re-verified against their public key."""

    __tablename__ = "passkey"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1024), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary(2048))
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    transports: Mapped[list[str]] = mapped_column(JSON, default=list)
    name: Mapped[str] = mapped_column(String(80))
    aaguid: Mapped[str | None] = mapped_column(String(36))
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class SessionRecord(Base):
    """Server-side sessions in the embedded shape (Redis takes over when ``PORTAL_REDIS_URL`` is set)."""

    __tablename__ = "session_store"
    key: Mapped[str] = mapped_column(String(255), unique=True)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), index=True)


class ApiKey(Base):
    """An insurer's API key. Only a hash is stored; the visible prefix identifies it in lists and logs."""

    __tablename__ = "api_key"
    insurer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("insurer.id", ondelete="CASCADE"), index=True)
    prefix: Mapped[str] = mapped_column(String(24), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(80))
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    def is_usable(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


__all__ = ["Any", "ApiKey", "Passkey", "SessionRecord"]


class User(Base):
    """A person. Not tenant-owned: one person may hold roles in several tenants, grids and offices."""

    __tablename__ = "user_account"
    login: Mapped[str] = mapped_column(String(120), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    locale: Mapped[str | None] = mapped_column(String(8))
    is_platform_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    # Sessions signed in before this moment are void ("sign out everywhere", a revoked passkey...).
    sessions_valid_after: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))

    # Loading it goes through the scope like any query: a user sees only the memberships in scope.
    memberships: Mapped[list[Membership]] = relationship(viewonly=True, lazy="raise")
