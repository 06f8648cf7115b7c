"""Tenancy scope, enforced fail-closed in two places (DESIGN section 6).

1. In the ORM: every ORM statement touching a tenant-owned model needs a scope on its session. Without
   one it raises :class:`ScopeMissing`; with one, ``with_loader_criteria`` adds the tenant filter to
   selects, relationship loads and bulk UPDATE/DELETE. INSERTs are not filtered: services set
   ``tenant_id`` themselves, and ``before_flush`` refuses a new row outside the scope.
2. In PostgreSQL: row-level security on every tenant-owned table keyed on per-transaction settings that
   :func:`_apply_pg_scope` sets at the start of every transaction (``set_config(..., true)`` so a pooled
   connection never carries a scope into the next transaction). The system scope switches to a role with
   BYPASSRLS for that transaction only, and is logged.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import uuid
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog
from sqlalchemy import Table, event, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter, ColumnElement

log = structlog.get_logger("portal.tenancy")

SYSTEM_ROLE = "portal_system"


class ScopeMissing(RuntimeError):
    """A tenant-owned model was queried on a session without a scope: a bug, never a user error."""


class ScopeViolation(RuntimeError):
    """A write would create or move a row outside the session's scope."""


class ScopeKind(enum.StrEnum):
    TENANT = "tenant"  # a member of one tenant
    TENANTS = "tenants"  # an insurer: the tenants that consented
    GRIDS = "grids"  # a grid warden: the tenants of the assigned grids
    JURISDICTION = "jurisdiction"  # a regulator: the tenants of a jurisdiction subtree
    SYSTEM = "system"  # jobs and seeding: every tenant, explicit and logged


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    tenant_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    grid_ids: frozenset[uuid.UUID] = field(default_factory=frozenset)
    jurisdiction_path: str = ""
    reason: str = ""

    @classmethod
    def tenant(cls, tenant_id: uuid.UUID) -> Scope:
        return cls(ScopeKind.TENANT, tenant_ids=frozenset({tenant_id}))

    @classmethod
    def tenants(cls, tenant_ids: Iterable[uuid.UUID]) -> Scope:
        return cls(ScopeKind.TENANTS, tenant_ids=frozenset(tenant_ids))

    @classmethod
    def grids(cls, grid_ids: Iterable[uuid.UUID]) -> Scope:
        return cls(ScopeKind.GRIDS, grid_ids=frozenset(grid_ids))

    @classmethod
    def jurisdiction(cls, path: str) -> Scope:
        if not path or not path.endswith("/"):
            raise ValueError("a jurisdiction path ends with '/'")
        return cls(ScopeKind.JURISDICTION, jurisdiction_path=path)

    @classmethod
    def system(cls, reason: str) -> Scope:
        if not reason:
            raise ValueError("the system scope needs a reason, for the log")
        return cls(ScopeKind.SYSTEM, reason=reason)

    @property
    def single_tenant_id(self) -> uuid.UUID | None:
        if self.kind is ScopeKind.TENANT:
            return next(iter(self.tenant_ids))
        return None

    def pg_settings(self) -> dict[str, str]:
        """The transaction-local settings the RLS policies read (one per kind; the others stay empty)."""
        values = {"kind": self.kind.value, "tenant_ids": "", "grid_ids": "", "jurisdiction_path": ""}
        if self.kind in (ScopeKind.TENANT, ScopeKind.TENANTS):
            values["tenant_ids"] = ",".join(sorted(str(t) for t in self.tenant_ids))
        elif self.kind is ScopeKind.GRIDS:
            values["grid_ids"] = ",".join(sorted(str(g) for g in self.grid_ids))
        elif self.kind is ScopeKind.JURISDICTION:
            values["jurisdiction_path"] = self.jurisdiction_path
        return values


class TenantScoped:
    """Marker for models whose rows belong to a tenant. ``__scope_column__`` names the tenant id column."""

    __scope_column__: ClassVar[str] = "tenant_id"


_SCOPE_KEY = "portal.scope"


def bind_scope(session: Session | Any, scope: Scope | None) -> None:
    """Attach ``scope`` to a (sync or async) session. Must happen before the first query."""
    sync = getattr(session, "sync_session", session)
    sync.info[_SCOPE_KEY] = scope
    if scope is not None and scope.kind is ScopeKind.SYSTEM:
        log.debug("system_scope", reason=scope.reason)  # routine: every job and sweep takes one


async def set_scope(session: Any, scope: Scope | None) -> None:
    """Bind ``scope`` to an async session, re-applying the PostgreSQL settings if a transaction is open."""
    previous = scope_of(session)
    bind_scope(session, scope)
    if session.in_transaction() and session.bind is not None and session.bind.dialect.name == "postgresql":

        def _reapply(connection: Connection) -> None:
            if previous is not None and previous.kind is ScopeKind.SYSTEM:
                connection.execute(text("set local role none"))
            apply_pg_scope(connection, scope)

        conn = await session.connection()
        await conn.run_sync(_reapply)


def scope_of(session: Session | Any) -> Scope | None:
    sync = getattr(session, "sync_session", session)
    scope = sync.info.get(_SCOPE_KEY)
    return scope if isinstance(scope, Scope) else None


def require_scope(session: Session | Any) -> Scope:
    scope = scope_of(session)
    if scope is None:
        raise ScopeMissing("this session has no tenancy scope")
    return scope


# -- ORM enforcement -----------------------------------------------------------------------------------


def _tenant_table() -> Any:
    # By name on the shared metadata: the tables sit above core (portal.models), core never imports them.
    from portal.core.db import metadata

    return metadata.tables["tenant"]


def criteria_for(cls: type, scope: Scope) -> ColumnElement[bool]:
    """The WHERE clause that keeps ``cls`` rows inside ``scope`` (not for SYSTEM)."""
    column = getattr(cls, cls.__scope_column__)  # type: ignore[attr-defined]
    is_tenant_table = cls.__scope_column__ == "id"  # type: ignore[attr-defined]
    if scope.kind in (ScopeKind.TENANT, ScopeKind.TENANTS):
        ids = list(scope.tenant_ids)
        return column == ids[0] if len(ids) == 1 else column.in_(ids)
    tenant = _tenant_table()
    # A Core table (not the mapped class) in the subquery: loader criteria never recurse into it.
    if scope.kind is ScopeKind.GRIDS:
        if is_tenant_table:
            return cls.grid_id.in_(list(scope.grid_ids))  # type: ignore[attr-defined]
        return column.in_(select(tenant.c.id).where(tenant.c.grid_id.in_(list(scope.grid_ids))))
    if scope.kind is ScopeKind.JURISDICTION:
        if is_tenant_table:
            return cls.jurisdiction_path.startswith(scope.jurisdiction_path, autoescape=True)  # type: ignore[attr-defined]
        return column.in_(
            select(tenant.c.id).where(
                tenant.c.jurisdiction_path.startswith(scope.jurisdiction_path, autoescape=True)
            )
        )
    raise ScopeMissing(f"no criteria for scope kind {scope.kind}")


# The tenant-owned classes a statement touches, remembered per statement object. Statements are immutable,
# and the hot ones are built once and run on every page (``functools.cache`` builders with bound
# parameters); finding the classes walks every column of the statement, which on the tenant home page
# cost more than adding the criteria. Weak keys: a statement built for one call is forgotten with it.
_SCOPED_OF: weakref.WeakKeyDictionary[Any, tuple[type, ...]] = weakref.WeakKeyDictionary()

#: A member's tenant in the ORM criteria is a bound parameter, filled in on every execution: the criteria
#: are then the same for every tenant, so each statement gets them once (:data:`_WITH_TENANT_CRITERIA`)
#: and SQLAlchemy computes the cache key of the result once, not on every execution (with the tenant's id
#: written into the criteria, that key was most of the ORM check's cost: ~35 % more database time for
#: the tenant home page).
TENANT_PARAM = "portal_scope_tenant_id"
_WITH_TENANT_CRITERIA: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def _per_statement(memo: weakref.WeakKeyDictionary[Any, Any], statement: Any, make: Callable[[], Any]) -> Any:
    """``make()`` remembered for ``statement`` in ``memo`` (weak keys)."""
    try:
        return memo[statement]
    except (KeyError, TypeError):  # TypeError: a statement type that takes no weak reference
        pass
    value = make()
    with contextlib.suppress(TypeError):
        memo[statement] = value
    return value


def _scoped_classes(state: ORMExecuteState) -> tuple[type, ...]:
    def find() -> tuple[type, ...]:
        found = {m.class_ for m in state.all_mappers if issubclass(m.class_, TenantScoped)}
        # ``all_mappers`` names the entities of the outer statement only: a tenant-owned table inside a
        # subquery (a page's total counted over the page's own statement) would escape the scope, or,
        # without one, the ScopeMissing check. Every table at any depth counts.
        by_table = _scoped_tables()
        tables = (e for e in visitors.iterate(state.statement) if isinstance(e, Table))  # type: ignore[arg-type]
        found.update(by_table[t] for t in tables if t in by_table)
        return tuple(sorted(found, key=lambda c: c.__name__))

    return _per_statement(_SCOPED_OF, state.statement, find)


_TABLES: dict[Table, type] = {}
_KNOWN: list[int] = [0]  # how many subclasses _TABLES was built from


def _scoped_tables() -> dict[Table, type]:
    """Each tenant-owned class by its table (re-read when a model class was defined since)."""
    classes: list[type] = []
    pending: list[type] = [TenantScoped]
    while pending:
        sub: type
        for sub in pending.pop().__subclasses__():
            classes.append(sub)
            pending.append(sub)
    if len(classes) != _KNOWN[0]:
        _KNOWN[0] = len(classes)
        _TABLES.clear()
        _TABLES.update({c.__table__: c for c in classes if isinstance(getattr(c, "__table__", None), Table)})  # type: ignore[attr-defined]
    return _TABLES


@event.listens_for(Session, "do_orm_execute")
def _enforce_scope(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    classes = _scoped_classes(state)
    if not classes:
        return
    scope = state.session.info.get(_SCOPE_KEY)
    if not isinstance(scope, Scope):
        names = ", ".join(sorted(c.__name__ for c in classes))
        raise ScopeMissing(f"query on tenant-owned {names} without a scope")
    if scope.kind is ScopeKind.SYSTEM:
        return
    if scope.kind is ScopeKind.TENANT:  # a member: the hot path
        state.statement = _with_tenant_criteria(state.statement, classes)
        tenant = {TENANT_PARAM: scope.single_tenant_id}
        params: Any = state.parameters
        state.parameters = (
            [{**p, **tenant} for p in params] if state.is_executemany else {**(params or {}), **tenant}
        )
        return
    state.statement = state.statement.options(*_criteria_options(classes, scope))


def _with_tenant_criteria(statement: Any, classes: tuple[type, ...]) -> Any:
    return _per_statement(
        _WITH_TENANT_CRITERIA, statement, lambda: statement.options(*_tenant_criteria(classes))
    )


class _ScopeParameter(BindParameter[Any]):
    """The member's tenant in the loader criteria: a bound parameter that compares like a plain object.

    The ORM adds an annotated copy of the criteria to each statement, and SQLAlchemy keys the values of a
    cached statement's parameters by parameter in a dict where the copy and the original collide (an
    annotated element hashes like its original). A collision is settled with ``==``, which for a column
    element builds a SQL expression and then asks it for its truth: a few of those per statement were most
    of what the ORM criteria cost on the tenant home page. Here ``==`` between two parameters answers at
    once, with the same result the expression would give (equal exactly when the hashes are).
    """

    inherit_cache = True

    def __eq__(self, other: Any) -> Any:
        if isinstance(other, BindParameter):
            return hash(self) == hash(other)
        return super().__eq__(other)

    __hash__ = BindParameter.__hash__


@functools.cache
def _tenant_criteria(classes: tuple[type, ...]) -> tuple[Any, ...]:
    param: Any = _ScopeParameter(TENANT_PARAM)
    return tuple(
        with_loader_criteria(c, getattr(c, c.__scope_column__) == param, include_aliases=True)  # type: ignore[attr-defined]
        for c in classes
    )


@functools.lru_cache(maxsize=4096)
def _criteria_options(classes: tuple[type, ...], scope: Scope) -> tuple[Any, ...]:
    """The loader criteria for ``classes`` under a scope of several tenants (an insurer's, a warden's, a
    regulator's), built once per pair: a request runs several statements under one scope."""
    return tuple(with_loader_criteria(c, criteria_for(c, scope), include_aliases=True) for c in classes)


@event.listens_for(Session, "before_flush")
def _check_new_rows(session: Session, _ctx: Any, _instances: Any) -> None:
    """New or moved tenant-owned rows must stay inside the scope (covers INSERT, which loaders don't)."""
    touched = [o for o in (*session.new, *session.dirty) if isinstance(o, TenantScoped)]
    if not touched:
        return
    scope = session.info.get(_SCOPE_KEY)
    if not isinstance(scope, Scope):
        raise ScopeMissing("flush of tenant-owned rows without a scope")
    if scope.kind is ScopeKind.SYSTEM:
        return
    for obj in touched:
        if obj.__scope_column__ == "id":
            if obj in session.new:
                raise ScopeViolation("only the system scope creates tenants")
            tid = obj.id  # type: ignore[attr-defined]
        else:
            tid = getattr(obj, obj.__scope_column__)
            if tid is None and getattr(obj, "__platform_rows__", False):
                continue  # a platform-chain row (e.g. an admin's audit entry) belongs to no tenant
        if scope.kind in (ScopeKind.TENANT, ScopeKind.TENANTS) and tid not in scope.tenant_ids:
            raise ScopeViolation(f"{type(obj).__name__} for a tenant outside the scope")


# -- PostgreSQL enforcement ----------------------------------------------------------------------------


@event.listens_for(Session, "after_begin")
def _apply_pg_scope(session: Session, _transaction: Any, connection: Connection) -> None:
    if connection.dialect.name != "postgresql":
        return
    apply_pg_scope(connection, session.info.get(_SCOPE_KEY))


def _bypasses_rls(connection: Connection) -> bool:
    info = connection.connection.info  # the pooled DBAPI connection's info dict
    if info.get("bypass_rls") is None:
        row = connection.execute(
            text("select rolsuper or rolbypassrls from pg_roles where rolname = current_user")
        ).scalar()
        info["bypass_rls"] = bool(row)
    return bool(info["bypass_rls"])


_EMPTY = {"kind": "", "tenant_ids": "", "grid_ids": "", "jurisdiction_path": ""}
_SET_SCOPE = text(
    "select set_config('portal.scope_kind', :kind, true), set_config('portal.tenant_ids', :tenant_ids, true),"
    " set_config('portal.grid_ids', :grid_ids, true),"
    " set_config('portal.jurisdiction_path', :jurisdiction_path, true)"
)


def apply_pg_scope(connection: Connection, scope: Scope | None) -> None:
    """Set the transaction-local settings the RLS policies read. No scope → empty → no tenant rows."""
    connection.execute(_SET_SCOPE, scope.pg_settings() if scope else _EMPTY)
    if scope is not None and scope.kind is ScopeKind.SYSTEM and not _bypasses_rls(connection):
        connection.execute(text(f"set local role {SYSTEM_ROLE}"))
