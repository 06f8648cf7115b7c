"""Owners of evidence and who may see what.

Each owner type registers a resolver that finds the owner's tenant *inside the session's scope*; an owner
outside it (or of a type no issue has wired yet) is not found. Insurers never see evidence.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.tenancy import ScopeKind, require_scope
from portal.models.evidence import OwnerType
from portal.models.tenants import MemberRole


class EvidenceNotFound(LookupError):
    """Missing, or outside the caller's scope: the same answer (404), no existence oracle."""


OwnerResolver = Callable[[AsyncSession, uuid.UUID], Awaitable[uuid.UUID | None]]
FrozenCheck = Callable[[AsyncSession, uuid.UUID], Awaitable[bool]]
_owners: dict[OwnerType, OwnerResolver] = {}
_frozen: dict[OwnerType, FrozenCheck] = {}


def register_owner(
    owner_type: OwnerType, resolver: OwnerResolver, *, frozen: FrozenCheck | None = None
) -> None:
    """How to find the tenant of an owner (``None`` when missing or out of scope), and, when given, when it
    takes no more evidence (e.g. a submitted self-check: its photos are signed). Called by
    :mod:`portal.registry` only."""
    _owners[owner_type] = resolver
    if frozen is not None:
        _frozen[owner_type] = frozen


async def is_frozen(session: AsyncSession, owner_type: OwnerType, owner_id: uuid.UUID) -> bool:
    check = _frozen.get(owner_type)
    return bool(check is not None and await check(session, owner_id))


async def tenant_owner(session: AsyncSession, owner_id: uuid.UUID) -> uuid.UUID | None:
    from portal.tenants.services import get_tenant

    tenant = await get_tenant(session, owner_id)
    return tenant.id if tenant is not None else None


def viewer_scope(session: AsyncSession) -> ScopeKind:
    kind = require_scope(session).kind
    if kind is ScopeKind.TENANTS:  # insurers read risk status, never photos
        raise EvidenceNotFound()
    return kind


async def resolve_owner(session: AsyncSession, owner_type: OwnerType, owner_id: uuid.UUID) -> uuid.UUID:
    """The owner's tenant id, or EvidenceNotFound (unknown type yet, missing, or outside the scope)."""
    viewer_scope(session)
    resolver = _owners.get(owner_type)
    tenant_id = await resolver(session, owner_id) if resolver is not None else None
    if tenant_id is None:
        raise EvidenceNotFound()
    return tenant_id


async def may_see_private(session: AsyncSession, user_id: uuid.UUID | None, tenant_id: uuid.UUID) -> bool:
    """GPS and originals: the tenant's managers and responsible person, and regulators."""
    kind = require_scope(session).kind
    if kind in (ScopeKind.JURISDICTION, ScopeKind.SYSTEM):
        return True
    if kind is not ScopeKind.TENANT or user_id is None:
        return False
    from portal.tenants.services import roles_of

    return bool(await roles_of(session, tenant_id, user_id) & {MemberRole.MANAGER, MemberRole.RESPONSIBLE})
