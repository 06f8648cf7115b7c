"""A major hazard (a GB 35181 direct-determination element) is reported at once, outside the tenant: to
the wardens of the tenant's grid and the regulators of every jurisdiction above it — each in their own
language, once per hazard, in the inbox and by e-mail."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from portal.core import i18n
from portal.core.i18n import _
from portal.models.selfcheck import Hazard, LadderStep, Severity
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


async def ask_for_verification(
    session: AsyncSession, hazard: Hazard, *, submitted_by: uuid.UUID | None
) -> int:
    """A rectification waits for someone to accept it: those who may (the grid's wardens for a major
    hazard; the managers and the responsible person otherwise) are told, once per submission, except
    whoever submitted it."""
    tenant = await session.get(Tenant, hazard.tenant_id)
    assert tenant is not None
    if hazard.severity is Severity.MAJOR:
        people = await people_on_step(session, tenant, LadderStep.WARDEN, None)
    else:
        people = await people_on_step(session, tenant, LadderStep.MANAGER, None)
        people += await people_on_step(session, tenant, LadderStep.RESPONSIBLE, None)
    people = [p for p in dict.fromkeys(people) if p != submitted_by]

    def message() -> tuple[str, str]:
        return (
            _("A rectification waits for your verification: %(title)s", title=hazard.title),
            _("Check the photo of the fix, then accept it or send it back."),
        )

    created = await notify_in_own_language(
        session,
        people,
        "hazard.verify",
        message,
        f"/t/{tenant.id}/hazards/{hazard.id}",
        f"verify:{hazard.id}:{hazard.rejections}",
        tenant_id=tenant.id,
    )
    return len(created)
