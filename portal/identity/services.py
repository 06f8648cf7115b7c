"""Rules of signing in. Demo sign-in exists only in demo mode on a loopback address."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.config import Settings
from portal.core.tenancy import Scope, scope_of, set_scope
from portal.identity.principal import Context, contexts_for
from portal.models.tenants import User


class DemoSignInRefused(PermissionError):
    pass


def demo_sign_in_allowed(settings: Settings) -> bool:
    return settings.demo and settings.on_loopback


@dataclass(frozen=True)
class DemoUser:
    user_id: uuid.UUID
    login: str
    display_name: str
    contexts: list[Context]


async def demo_users(session: AsyncSession) -> list[DemoUser]:
    """Every user with the roles they hold, for the one-click demo sign-in page (system scope)."""
    users = (
        (await session.execute(select(User).where(User.active.is_(True)).order_by(User.login)))
        .scalars()
        .all()
    )
    return [DemoUser(u.id, u.login, u.display_name, await contexts_for(session, u.id)) for u in users]


async def find_user(session: AsyncSession, login: str) -> User | None:
    return (
        await session.execute(select(User).where(User.login == login, User.active.is_(True)))
    ).scalar_one_or_none()


async def set_locale(session: AsyncSession, user_id: uuid.UUID, locale: str) -> None:
    """The person's page language; a change goes on the platform chain (a user belongs to no tenant)."""
    user = await session.get(User, user_id)
    if user is None or user.locale == locale:
        return
    before = user.locale
    user.locale = locale
    await session.flush()
    if scope_of(session) is None:
        # Someone without a role sees no tenant; a scope of no tenant at all lets the platform entry flush.
        await set_scope(session, Scope.tenants(()))
    await audit.record(
        session,
        "user.locale_changed",
        tenant_id=None,
        object_type="user",
        object_id=user.id,
        detail={"from": before, "to": locale},
    )
