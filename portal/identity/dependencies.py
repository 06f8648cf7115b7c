"""The signed-in person on every request: the ``principal`` dependency (re-checked against the database,
its scope bound to the request's session before any tenant row is read), the API-key principal of an
insurer's system, and the sign-in redirect of a page that needs a session."""

from __future__ import annotations

import functools
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException
from litestar.response import Redirect
from sqlalchemy import Row, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.core import api_contract, problems, web
from portal.core.db import AnySelect
from portal.core.i18n import _
from portal.core.route_access import access_of
from portal.core.tenancy import Scope as TenancyScope
from portal.core.tenancy import scope_of, set_scope
from portal.identity.principal import (
    Context,
    ContextKind,
    Principal,
    consenting_tenants,
    consenting_tenants_of,
    scope_for,
)

# Route parameter type: the signed-in person (None when signed out).
CurrentPrincipal = NamedDependency[Principal | None]


# -- dependencies -------------------------------------------------------------------------------------


PRINCIPAL_KEY = "portal.principal"


def request_db_session(connection: ASGIConnection[Any, Any, Any, Any]) -> AsyncSession:
    """The request's SQLAlchemy session (the one the ``db_session`` dependency gives), made on first use.

    Guards run before dependencies are resolved; through this they share the request's session."""
    from advanced_alchemy.extensions.litestar.plugins.init.plugin import SQLAlchemyInitPlugin

    config = connection.app.plugins.get(SQLAlchemyInitPlugin).config[0]
    return config.provide_session(connection.app.state, connection.scope)  # type: ignore[return-value]


async def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The request's principal, resolved once (by the access guard or by the ``principal`` dependency)."""
    state = connection.scope.setdefault("state", {})
    if PRINCIPAL_KEY in state:
        return state[PRINCIPAL_KEY]
    return await provide_principal(connection, request_db_session(connection))  # type: ignore[arg-type]


async def provide_principal(request: Request, db_session: NamedDependency[AsyncSession]) -> Principal | None:
    """The signed-in person and the scope of their active context, re-checked against the database.

    The scope is bound to the request's session here, before any tenant-owned table is read. A session
    past its absolute timeout, or older than the person's ``sessions_valid_after``, is cleared here.
    """
    state = request.scope.setdefault("state", {})
    if PRINCIPAL_KEY in state:
        return state[PRINCIPAL_KEY]
    principal = await _resolve_principal(request, db_session)
    state[PRINCIPAL_KEY] = principal
    return principal


def bearer_token(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The ``Authorization: Bearer …`` token of the request, if any."""
    header = connection.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def _takes_api_keys(connection: ASGIConnection[Any, Any, Any, Any]) -> bool:
    """Is the route declared ``access.api_key()``? A key is not a person: on every other route (pages,
    account, passkeys, key management) it is ignored, so a key alone answers 401 there."""
    rule = access_of(connection.scope["route_handler"])
    return rule is not None and rule.by_api_key


async def _api_key_principal(request: Request, db_session: AsyncSession, token: str) -> Principal:
    """An insurer's system: the key's insurer, scoped to the tenants whose consent is in force."""
    from portal.identity import api_keys

    await set_scope(db_session, None)
    key = await api_keys.authenticate(db_session, token)
    if key is None:
        raise problems.Problem(401, _("The API key is unknown, expired or revoked."), code="api_key_refused")
    async with request.app.state.db.session(TenancyScope.system("api key consents")) as sys_session:
        scope = await consenting_tenants_of(sys_session, key.insurer_id)
    await set_scope(db_session, scope)
    previous = audit.current_actor()
    audit.set_actor(
        audit.Actor(label=f"api-key fsk_{key.prefix}", ip=previous.ip, request_id=previous.request_id)
    )
    return Principal(
        user_id=key.created_by_id or uuid.UUID(int=0),
        display_name=f"fsk_{key.prefix}",
        locale=None,
        context=Context(ContextKind.INSURER, str(key.insurer_id), ""),
        scope=scope,
        api_key_id=key.id,
    )


@functools.cache
def _person_statements() -> tuple[AnySelect, AnySelect]:
    """The two ways of reading the signed-in person, built once (the models import this module's package).

    Columns, not the ``User`` entity: the principal copies a few fields and nothing changes the account on
    the request, so identity-map bookkeeping would be wasted. With a tenant, the person's roles there come
    in the same statement (LEFT JOIN: one row per role, or one row with no role when the membership is
    gone); the tenancy scope adds its criterion to the join's ON clause, so the account row is still found
    and a foreign membership is never seen."""
    from portal.models.identity import User
    from portal.models.tenants import Membership

    person = (
        User.id,
        User.login,
        User.display_name,
        User.locale,
        User.active,
        User.is_platform_admin,
        User.sessions_valid_after,
    )
    alone = select(*person).where(User.id == bindparam("user_id"))
    with_roles = (
        select(*person, Membership.role)
        .outerjoin(
            Membership,
            and_(Membership.user_id == User.id, Membership.tenant_id == bindparam("tenant_id")),
        )
        .where(User.id == bindparam("user_id"))
    )
    return alone, with_roles


async def load_person(
    db_session: AsyncSession, user_id: uuid.UUID, tenant_id: uuid.UUID | None = None
) -> tuple[Row[Any] | None, frozenset[str]]:
    """The person's account row (``None``: no such user) and, with ``tenant_id``, every role they hold in
    that tenant (empty: none, or outside the session's scope): one statement either way."""
    alone, with_roles = _person_statements()
    if tenant_id is None:
        return (await db_session.execute(alone, {"user_id": user_id})).first(), frozenset()
    rows = (await db_session.execute(with_roles, {"user_id": user_id, "tenant_id": tenant_id})).all()
    return (rows[0] if rows else None), frozenset(r.role.value for r in rows if r.role is not None)


async def _resolve_principal(request: Request, db_session: AsyncSession) -> Principal | None:
    from portal.identity import sessions

    token = bearer_token(request)
    if token is not None and _takes_api_keys(request):
        return await _api_key_principal(request, db_session, token)
    session = request.session if request.scope.get("session") is not None else {}
    uid = session.get("uid")
    if not uid:
        await set_scope(db_session, None)
        return None
    settings = request.app.state.settings
    if sessions.session_refused(
        session, absolute=timedelta(hours=settings.session_absolute_hours), valid_after=None
    ):
        sessions.end_session(request)
        await set_scope(db_session, None)
        return None
    user_id = uuid.UUID(uid)
    ctx = session.get("ctx") or ""
    kind_s, _sep, key = ctx.partition(":")
    scope: TenancyScope | None = None
    roles: frozenset[str] = frozenset()
    person: Row[Any] | None = None
    try:
        kind = ContextKind(kind_s) if kind_s else None
    except ValueError:
        kind = None
    if kind is ContextKind.MEMBER:
        scope = TenancyScope.tenant(uuid.UUID(key))
        await set_scope(db_session, scope)
        # The membership re-check and the account in one round trip (the hot path: every member page).
        person, roles = await load_person(db_session, user_id, scope.single_tenant_id)
        if not roles:
            scope = None
    elif kind is ContextKind.INSURER:
        db = request.app.state.db
        async with db.session(TenancyScope.system("insurer consents")) as sys_session:
            scope = await consenting_tenants(sys_session, user_id, uuid.UUID(key))
    elif kind is not None:
        scope = await scope_for(db_session, user_id, kind, key)
    if scope != scope_of(db_session):
        # Re-applying the scope already bound (a member still a member) would only repeat the same
        # set_config round trip inside the open transaction.
        await set_scope(db_session, scope)
    if kind is not ContextKind.MEMBER:
        person, _roles = await load_person(db_session, user_id)
    if person is None or not person.active:
        request.clear_session()
        return None
    if sessions.session_refused(
        session,
        absolute=timedelta(hours=settings.session_absolute_hours),
        valid_after=person.sessions_valid_after,
    ):
        sessions.end_session(request)
        await set_scope(db_session, None)
        return None
    if kind is ContextKind.ADMIN and not person.is_platform_admin:
        kind = None  # no longer a platform admin: the context is gone, like a revoked membership
    context = (
        Context(kind, key, "", role=_strongest(roles))
        if kind is not None and (scope is not None or kind is ContextKind.ADMIN)
        else None
    )
    previous = audit.current_actor()
    audit.set_actor(
        audit.Actor(
            label=f"{person.display_name} ({person.login})",
            user_id=person.id,
            ip=previous.ip,
            request_id=previous.request_id,
        )
    )
    return Principal(
        user_id=person.id,
        display_name=person.display_name,
        locale=person.locale,
        context=context,
        scope=scope,
        roles=roles if context is not None else frozenset(),
    )


def _strongest(roles: frozenset[str]) -> str:
    from portal.models.tenants import MemberRole

    return next((r.value for r in MemberRole if r.value in roles), "")


async def provide_db(
    db_session: NamedDependency[AsyncSession], principal: NamedDependency[Principal | None]
) -> AsyncSession:
    """The request's session, already bound to the principal's scope (no principal → no tenant rows)."""
    return db_session


def require_principal(principal: NamedDependency[Principal | None]) -> Principal:
    if principal is None:
        raise NotAuthorizedException(detail=_("Please sign in."))
    return principal


def sign_in_first(request: Request, exc: NotAuthorizedException) -> Response[Any]:
    """401 on a page: to the sign-in page and back (with a notice when a session ended); the JSON API
    and scripts keep the problem details of :func:`portal.core.web.error_response`."""
    if api_contract.wants_json(request):
        return web.error_response(request, exc)
    from portal.identity.sessions import session_ended

    query = {"next": request.url.path, **({"notice": "session_ended"} if session_ended(request) else {})}
    return Redirect(path=f"/signin?{urlencode(query, safe='/')}")
