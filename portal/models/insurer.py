"""Insurers, their users, and the tenants' revocable consents (the insurer scope)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.db import Base
from portal.core.tenancy import TenantScoped
from portal.models.tenants import _enum


class ConsentScope(enum.StrEnum):
    GRADE_ONLY = "grade_only"
    GRADE_AND_FACTORS = "grade_and_factors"


class Insurer(Base):
    __tablename__ = "insurer"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)


class InsurerUser(Base):
    __tablename__ = "insurer_user"
    insurer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("insurer.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)


class Consent(Base, TenantScoped):
    """A tenant lets one insurer read its risk status; revoking ends it (the row stays as history)."""

    __tablename__ = "consent"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    insurer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("insurer.id", ondelete="CASCADE"), index=True)
    scope: Mapped[ConsentScope] = mapped_column(_enum(ConsentScope, "consent_scope"))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
