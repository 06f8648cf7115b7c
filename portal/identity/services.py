"""Rules of signing in. Demo sign-in exists only in demo mode on a loopback address."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope, scope_of, set_scope
from portal.identity.principal import Context, contexts_for
from portal.models.identity import User


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


async def roles_of(db: Database, user_id: uuid.UUID, reason: str) -> list[Context]:
    """Every role the person holds, across tenants. The request's scope sees one tenant at most, so this
    read opens the system scope for itself, with ``reason`` in the log (signing in, switching roles,
    recovering an account)."""
    async with db.session(Scope.system(f"{reason}: the person's roles")) as session:
        return await contexts_for(session, user_id)


async def demo_users(db: Database) -> list[DemoUser]:
    """Every user with the roles they hold, for the one-click demo sign-in page (system scope)."""
    async with db.session(Scope.system("demo sign-in page")) as session:
        users = (
            (await session.execute(select(User).where(User.active.is_(True)).order_by(User.login)))
            .scalars()
            .all()
        )
        return [DemoUser(u.id, u.login, u.display_name, await contexts_for(session, u.id)) for u in users]


async def demo_person(db: Database, login: str) -> tuple[User, list[Context]] | None:
    """The active person with ``login`` and their roles, for demo sign-in (system scope); ``None``: none."""
    async with db.session(Scope.system("demo sign-in")) as session:
        user = (
            await session.execute(select(User).where(User.login == login, User.active.is_(True)))
        ).scalar_one_or_none()
        if user is None:
            return None
        return user, await contexts_for(session, user.id)


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
