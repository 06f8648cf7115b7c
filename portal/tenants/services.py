"""Business rules of the tenancy core. The only place that changes tenancy state."""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from portal.audit import services as audit
from portal.core import outbox
from portal.core.db import AnySelect
from portal.core.errors import NotAllowed
from portal.core.i18n import _
from portal.core.tenancy import require_scope
from portal.core.uscc import validate as validate_uscc
from portal.models.identity import User
from portal.models.tenants import (
    Jurisdiction,
    JurisdictionLevel,
    MemberRole,
    Membership,
    Tenant,
    TenantKind,
    UnitCategory,
)
from portal.tenants import policies

READINESS_TOPIC = "tenants.recompute_readiness"


class TenancyError(ValueError):
    """A rule of the tenancy model was broken; ``code`` names it for a translated message."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code


async def add_jurisdiction(
    session: AsyncSession,
    *,
    code: str,
    level: JurisdictionLevel,
    name_zh: str,
    name_en: str,
    parent: Jurisdiction | None,
) -> Jurisdiction:
    if (parent is None) != (level is JurisdictionLevel.CITY):
        raise TenancyError("jurisdiction_parent", "a city has no parent; districts and streets have one")
    path = f"{parent.path if parent else ''}{code}/"
    node = Jurisdiction(
        code=code,
        level=level,
        name_zh=name_zh,
        name_en=name_en,
        parent_id=parent.id if parent else None,
        path=path,
    )
    session.add(node)
    await session.flush()
    return node


async def register_tenant(
    session: AsyncSession,
    *,
    code: str,
    kind: TenantKind,
    category: UnitCategory | None,
    name_zh: str,
    name_en: str,
    address: str,
    jurisdiction: Jurisdiction,
    uscc: str | None = None,
    subtype: str | None = None,
    grid_id: uuid.UUID | None = None,
    premises: dict | None = None,
) -> Tenant:
    """Create a tenant (system scope only: onboarding is not something a tenant does to itself)."""
    if kind is TenantKind.UNIT and category is None:
        raise TenancyError("unit_category_required")
    if kind is TenantKind.COMMUNITY and category is not None:
        raise TenancyError("community_has_no_category")
    if jurisdiction.level is not JurisdictionLevel.STREET:
        raise TenancyError("tenant_needs_street", "a tenant sits in a street (街道)")
    if uscc is not None:
        uscc, problem = validate_uscc(uscc)
        if problem is not None:
            raise TenancyError(f"uscc_{problem.value}")
    elif kind is TenantKind.UNIT:
        raise TenancyError("uscc_required")
    tenant = Tenant(
        code=code,
        kind=kind,
        category=category,
        subtype=subtype,
        name_zh=name_zh,
        name_en=name_en,
        address=address,
        uscc=uscc,
        jurisdiction_id=jurisdiction.id,
        jurisdiction_path=jurisdiction.path,
        grid_id=grid_id,
        premises=premises or {},
    )
    session.add(tenant)
    await session.flush()
    # Onboarding is a platform act (platform chain) and the first entry of the tenant's own chain.
    detail = {"code": code, "kind": kind.value, "name_zh": name_zh, "jurisdiction": jurisdiction.path}
    await audit.record(
        session, "tenant.registered", tenant_id=None, object_type="tenant", object_id=tenant.id, detail=detail
    )
    await audit.record(
        session,
        "tenant.registered",
        tenant_id=tenant.id,
        object_type="tenant",
        object_id=tenant.id,
        detail=detail,
    )
    return tenant


async def add_member(session: AsyncSession, tenant: Tenant, user: User, role: MemberRole) -> Membership:
    membership = Membership(tenant_id=tenant.id, user_id=user.id, role=role)
    session.add(membership)
    await session.flush()
    await audit.record(
        session,
        "member.added",
        tenant_id=tenant.id,
        object_type="membership",
        object_id=membership.id,
        detail={"user_id": str(user.id), "display_name": user.display_name, "role": role.value},
    )
    # The tenant's readiness depends on its roster: recompute it in the background, durably.
    await outbox.emit(session, READINESS_TOPIC, {"tenant_id": str(tenant.id)}, tenant_id=tenant.id)
    return membership


@functools.cache
def _tenant_by_id() -> AnySelect:
    # joinedload (many-to-one, never null): one statement instead of a second SELECT
    return select(Tenant).where(Tenant.id == bindparam("tenant_id")).options(joinedload(Tenant.jurisdiction))


async def get_tenant(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant | None:
    """The tenant if it is inside the session's scope, else ``None`` (the route answers 404)."""
    require_scope(session)
    return (await session.execute(_tenant_by_id(), {"tenant_id": tenant_id})).scalar_one_or_none()


@dataclass(frozen=True)
class RosterEntry:
    membership_id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    role: MemberRole


@functools.cache
def _roster() -> AnySelect:
    return (
        select(Membership.id, User.id, User.display_name, Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(Membership.tenant_id == bindparam("tenant_id"))
        .order_by(Membership.role, User.display_name)
    )


async def roster(session: AsyncSession, tenant_id: uuid.UUID) -> list[RosterEntry]:
    rows = await session.execute(_roster(), {"tenant_id": tenant_id})
    return [RosterEntry(*row) for row in rows.all()]


async def list_tenants(
    session: AsyncSession, *, offset: int = 0, limit: int = 50, q: str | None = None
) -> tuple[Sequence[Tenant], int]:
    """Tenants visible in the current scope, for regulators and wardens; paginated."""
    require_scope(session)
    stmt = select(Tenant)
    # Control characters (a NUL byte aborts a PostgreSQL statement) never belong in a name or code.
    q = "".join(ch for ch in (q or "") if ch.isprintable()).strip()[:100]
    if q:
        stmt = stmt.where(
            Tenant.name_zh.contains(q, autoescape=True) | Tenant.code.contains(q, autoescape=True)
        )
    total = (await session.execute(select(func.count()).select_from(stmt.subquery()))).scalar_one()
    rows = (await session.execute(stmt.order_by(Tenant.code).offset(offset).limit(limit))).scalars().all()
    return rows, total


def readiness_of(roles: set[MemberRole], category: UnitCategory | None) -> str:
    """A tenant can run its cycle once it has a responsible person; a key unit also needs a manager
    (消防法 第17条). Small places usually have the owner in both roles, which is fine."""
    if MemberRole.RESPONSIBLE not in roles:
        return "no_responsible"
    if category is UnitCategory.KEY and MemberRole.MANAGER not in roles:
        return "no_manager"
    return "ready"


async def recompute_readiness(session: AsyncSession, payload: dict) -> None:
    """Idempotent: recomputes from the current roster, so running it twice gives the same answer."""
    tenant_id = uuid.UUID(payload["tenant_id"])
    tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        return
    roles = set(
        (await session.execute(select(Membership.role).where(Membership.tenant_id == tenant_id))).scalars()
    )
    tenant.readiness = readiness_of(roles, tenant.category)


async def create_user(
    session: AsyncSession,
    *,
    login: str,
    display_name: str,
    email: str | None = None,
    is_platform_admin: bool = False,
) -> User:
    user = User(login=login, display_name=display_name, email=email, is_platform_admin=is_platform_admin)
    session.add(user)
    await session.flush()
    return user


async def assign_regulator(
    session: AsyncSession, user: User, jurisdiction: Jurisdiction, *, org_name_zh: str, org_name_en: str
) -> None:
    from portal.models.tenants import RegulatorAssignment

    session.add(
        RegulatorAssignment(
            user_id=user.id, jurisdiction_id=jurisdiction.id, org_name_zh=org_name_zh, org_name_en=org_name_en
        )
    )
    await session.flush()


async def responsible_count(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    """How many responsible persons the tenant has (the roster and invitations both ask)."""
    count = select(func.count()).where(
        Membership.tenant_id == tenant_id, Membership.role == MemberRole.RESPONSIBLE
    )
    return int((await session.execute(count)).scalar_one())


async def roles_of(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> set[MemberRole]:
    """The roles a person holds in one tenant (empty when none)."""
    rows = await session.execute(
        select(Membership.role).where(Membership.tenant_id == tenant_id, Membership.user_id == user_id)
    )
    return set(rows.scalars())


# -- the public board's contact phone (opt-in) -----------------------------------------------------------

_MOBILE = re.compile(r"^1[3-9]\d{9}$")  # 11-digit mainland mobile numbers
_LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")  # area code + local number
_SERVICE = re.compile(r"^(400|800)-?\d{3}-?\d{4}$")  # national service numbers


class PhoneRefused(ValueError):
    """Not a phone number we can show; the route answers with a translated message."""


def clean_phone(raw: str) -> str | None:
    """A publishable number, with spaces and brackets dropped (``None``: show none)."""
    phone = re.sub(r"[\s()（）]", "", raw or "").replace("—", "-").replace("－", "-")
    if not phone:
        return None
    if phone.startswith("+86"):
        phone = phone[3:].lstrip("-")
    if not (_MOBILE.match(phone) or _LANDLINE.match(phone) or _SERVICE.match(phone)):
        raise PhoneRefused(raw)
    return phone


async def set_public_phone(session: AsyncSession, tenant: Tenant, user_id: uuid.UUID, raw: str) -> str | None:
    """Publish (or, empty, withdraw) the contact phone shown on the tenant's public board."""
    if not policies.may_edit_public_board(await roles_of(session, tenant.id, user_id)):
        raise NotAllowed(_(policies.ONLY_ANSWERABLE_EDIT_BOARD))
    phone = clean_phone(raw)
    if phone == tenant.public_phone:
        return phone
    tenant.public_phone = phone
    await session.flush()
    await audit.record(
        session,
        "tenant.public_phone_changed",
        tenant_id=tenant.id,
        object_type="tenant",
        object_id=tenant.id,
        detail={"published": phone is not None},
    )
    return phone
