"""A major hazard (a GB 35181 direct-determination element) is reported at once, outside the tenant: to
the wardens of the tenant's grid and the regulators of every jurisdiction above it — each in their own
language, once per hazard, in the inbox and by e-mail."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import i18n
from portal.core.i18n import _
from portal.models.selfcheck import Hazard, LadderStep
from portal.models.tenants import Tenant
from portal.notify.services import notify_in_own_language
from portal.selfcheck.ladder import people_on_step


def _message(hazard: Hazard, tenant: Tenant) -> tuple[str, str]:
    name = tenant.name_en if i18n.current_locale() == "en" and tenant.name_en else tenant.name_zh
    title = _("Major hazard reported: %(tenant)s", tenant=name)
    body = "\n".join(
        [
            hazard.title + (f" — {hazard.note}" if hazard.note else ""),
            _(
                "It is a suspected major hazard: it closes only after someone outside the unit "
                "(a grid warden or the fire authority) verifies the fix."
            ),
        ]
    )
    return title, body


async def report_major(session: AsyncSession, hazard: Hazard) -> int:
    """Notify the grid's wardens and the jurisdiction's regulators; returns how many messages were made."""
    tenant = await session.get(Tenant, hazard.tenant_id)
    assert tenant is not None
    people: list[uuid.UUID] = []
    for step in (LadderStep.WARDEN, LadderStep.REGULATOR):
        people += await people_on_step(session, tenant, step, None)
    created = await notify_in_own_language(
        session,
        people,
        "hazard.major_reported",
        lambda: _message(hazard, tenant),
        f"/t/{tenant.id}/hazards/{hazard.id}",
        f"major:{hazard.id}",
        tenant_id=tenant.id,
    )
    return len(created)
