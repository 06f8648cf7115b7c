"""Tables of the tenancy core: jurisdictions, tenants, users and memberships."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.db import Base
from portal.core.db import str_enum as _enum
from portal.core.tenancy import TenantScoped

if TYPE_CHECKING:  # relationships resolve by class name on the shared registry
    from portal.models.identity import User


class JurisdictionLevel(enum.StrEnum):
    CITY = "city"
    DISTRICT = "district"
    STREET = "street"


class TenantKind(enum.StrEnum):
    UNIT = "unit"
    COMMUNITY = "community"


class UnitCategory(enum.StrEnum):
    KEY = "key"
    GENERAL = "general"
    SMALL_PLACE = "small_place"


class MemberRole(enum.StrEnum):
    RESPONSIBLE = "responsible"
    MANAGER = "manager"
    STAFF = "staff"


class Jurisdiction(Base):
    """A node of the tree city → district → street. ``path`` is the materialised path of codes
    (``990100/990102/990102001/``) so that a subtree is one indexed prefix predicate."""

    __tablename__ = "jurisdiction"
    code: Mapped[str] = mapped_column(String(32), unique=True)
    level: Mapped[JurisdictionLevel] = mapped_column(_enum(JurisdictionLevel, "jurisdiction_level"))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    path: Mapped[str] = mapped_column(String(400), unique=True)

    __table_args__ = (
        Index("ix_jurisdiction_path_prefix", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )


class Tenant(Base, TenantScoped):
    """A unit or residential community that runs its own cycle. The tenant row itself is scoped by id."""

    __tablename__ = "tenant"
    __scope_column__ = "id"

    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[TenantKind] = mapped_column(_enum(TenantKind, "tenant_kind"))
    category: Mapped[UnitCategory | None] = mapped_column(_enum(UnitCategory, "unit_category"))
    subtype: Mapped[str | None] = mapped_column(String(64))
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    address: Mapped[str] = mapped_column(String(400))
    jurisdiction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    # Copied from the jurisdiction so that a regulator's subtree is one indexed predicate on this table.
    jurisdiction_path: Mapped[str] = mapped_column(String(400))
    grid_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("grid.id"), index=True)
    premises: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Maintained by the ``tenants.recompute_readiness`` job (through the outbox).
    readiness: Mapped[str] = mapped_column(String(32), default="unknown")
    # Shown on the public commitment board only when the tenant chose to publish one (opt-in, never a
    # person's own number unless they put it here).
    public_phone: Mapped[str | None] = mapped_column(String(32))

    jurisdiction: Mapped[Jurisdiction] = relationship(lazy="raise")
    memberships: Mapped[list[Membership]] = relationship(back_populates="tenant", lazy="raise")

    __table_args__ = (
        Index(
            "ix_tenant_jurisdiction_path_prefix",
            "jurisdiction_path",
            postgresql_ops={"jurisdiction_path": "text_pattern_ops"},
        ),
    )


class Membership(Base, TenantScoped):
    """A user's role inside one tenant."""

    __tablename__ = "membership"
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenant.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    role: Mapped[MemberRole] = mapped_column(_enum(MemberRole, "member_role"))

    tenant: Mapped[Tenant] = relationship(back_populates="memberships", lazy="raise")
    user: Mapped[User] = relationship(lazy="raise")

    __table_args__ = (UniqueConstraint("tenant_id", "user_id", "role"),)


class RegulatorAssignment(Base):
    """A regulator's office and the jurisdiction node it supervises (its scope is that subtree)."""

    __tablename__ = "regulator_assignment"
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    jurisdiction_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    org_name_zh: Mapped[str] = mapped_column(String(200))
    org_name_en: Mapped[str] = mapped_column(String(200), default="")

    jurisdiction: Mapped[Jurisdiction] = relationship(lazy="raise")
    __table_args__ = (UniqueConstraint("user_id", "jurisdiction_id"),)


class InvitationKind(enum.StrEnum):
    MEMBER = "member"  # a manager invites staff (or a new responsible person / manager) into a tenant
    WARDEN = "warden"  # a committee invites a grid warden
    COMMITTEE = "committee"  # the platform invites a residents' committee's staff
    REGULATOR = "regulator"  # the platform invites a regulator for a jurisdiction node
    INSURER = "insurer"  # the platform invites an insurer's user
    ADMIN = "admin"  # the platform invites another platform admin


class Invitation(Base):
    """A one-time link (and QR code) that grants one role. Only the token's SHA-256 is stored.

    Not a TenantScoped model: most kinds have no tenant. Services therefore take the tenant (or grid,
    committee...) from the caller's scope, never from input, and answer 404 for anything else.
    ``for_user_id`` marks a recovery invitation: accepting it adds a passkey to an existing person.
    """

    __tablename__ = "invitation"
    kind: Mapped[InvitationKind] = mapped_column(_enum(InvitationKind, "invitation_kind"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invitee_name: Mapped[str] = mapped_column(String(120))
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("tenant.id", ondelete="CASCADE"), index=True
    )
    member_role: Mapped[MemberRole | None] = mapped_column(_enum(MemberRole, "member_role"))
    grid_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("grid.id", ondelete="CASCADE"), index=True)
    committee_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("committee.id", ondelete="CASCADE"), index=True
    )
    jurisdiction_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jurisdiction.id"), index=True)
    insurer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("insurer.id", ondelete="CASCADE"), index=True
    )
    org_name_zh: Mapped[str | None] = mapped_column(String(200))
    for_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    invited_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    accepted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("user_account.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True))
