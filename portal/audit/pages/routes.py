"""The audit page of a tenant: its chain newest first, filterable, with the chain's verification badge.

Who may read it: the tenant's manager and responsible person, and a regulator whose jurisdiction holds the
tenant (that read is itself recorded in the chain). Staff, wardens, committees and insurers may not (403
when the tenant is in their scope); a tenant outside the scope answers 404 like every foreign object.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get
from litestar.exceptions import NotFoundException, PermissionDeniedException, ValidationException
from litestar.params import FromPath, QueryParameter
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import queries
from portal.audit import services as audit
from portal.audit.pages import policies
from portal.audit.pages.actions import action_label
from portal.audit.pages.describe import describe
from portal.core.i18n import _
from portal.core.web import DB, page
from portal.identity import reads
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import Principal
from portal.identity.reads import AUDIT_READ
from portal.models.tenants import Tenant
from portal.tenants import services as tenant_services

PAGE_SIZE = 25


def _parse_day(raw: str | None, field: str) -> date | None:
    text = (raw or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationException(detail=f"{field}: expected a date like 2026-11-23") from exc


async def _readable_tenant(db: AsyncSession, me: Principal, tenant_id: uuid.UUID) -> Tenant:
    """The tenant whose audit log ``me`` may read, or 404 (outside the scope) / 403 (a role that may not)."""
    if me.context is None or me.scope is None:
        raise NotFoundException()
    tenant = await tenant_services.get_tenant(db, tenant_id)
    if tenant is None:
        raise NotFoundException()  # foreign or missing: the same answer (no existence oracle)
    if not policies.may_read_audit(me):
        raise PermissionDeniedException(detail=_(policies.ONLY_READERS))
    return tenant


class AuditPages(Controller):
    path = "/t/{tenant_id:uuid}/audit"
    include_in_schema = False

    @get("/", opt={**policies.READERS, reads.READS_OPT: AUDIT_READ})
    async def audit_page(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        action: Annotated[str | None, QueryParameter(max_length=200)] = None,
        actor: Annotated[str | None, QueryParameter(max_length=400)] = None,
        date_from: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
        date_to: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
        page_no: Annotated[int, QueryParameter(name="page", ge=1, le=100_000)] = 1,
    ) -> Template:
        me = require_principal(principal)
        tenant = await _readable_tenant(db, me, tenant_id)
        flt = queries.EntryFilter(
            action=queries.clean_text(action, 80),
            actor=queries.clean_text(actor),
            date_from=_parse_day(date_from, "from"),
            date_to=_parse_day(date_to, "to"),
        )
        htmx = getattr(request, "htmx", None)
        full_page = not (htmx and not htmx.boosted)
        # The badge belongs to the full page; verifying reads the committed chain through its own session.
        breaks = await audit.verify(request.app.state.db, tenant_id=tenant.id) if full_page else []
        reads.note(request, page=page_no)
        tz = ZoneInfo(request.app.state.settings.display_timezone)
        total = await queries.count_entries(db, tenant.id, flt, tz=tz)
        pages = max(1, -(-total // PAGE_SIZE))
        page_no = min(page_no, pages)
        entries = await queries.list_entries(
            db, tenant.id, flt, tz=tz, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE
        )
        actions = await queries.actions_in_chain(db, tenant.id) if full_page else []
        if flt.action and flt.action not in actions:
            actions.append(flt.action)
        query = {
            "action": flt.action,
            "actor": flt.actor,
            "from": flt.date_from.isoformat() if flt.date_from else "",
            "to": flt.date_to.isoformat() if flt.date_to else "",
        }

        def page_url(number: int) -> str:
            params = {k: v for k, v in query.items() if v}
            return f"/t/{tenant.id}/audit?{urlencode({**params, 'page': number})}"

        return page(
            request,
            "audit/page.html",
            fragment="audit/_rows_fragment.html",
            tenant=tenant,
            entries=entries,
            total=total,
            page_no=page_no,
            pages=pages,
            page_url=page_url,
            filters=query,
            filtered=flt.active,
            actions=actions,
            action_label=action_label,
            describe=describe,
            first_break=breaks[0] if breaks else None,
            timezone=request.app.state.settings.display_timezone,
        )
