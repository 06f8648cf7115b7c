"""The monthly self-check (DESIGN section 3): due → in_progress → submitted → signed, ``overdue`` a flag.

Answering saves item by item; submitting freezes the answers, fixes the report's SHA-256 (what the
responsible person signs) and opens a hazard for every failed item with the item's reason and fix.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from portal.audit import services as audit
from portal.core import clock
from portal.core.errors import NotAllowed, Refused
from portal.core.i18n import _
from portal.models.selfcheck import (
    Answer,
    ChecklistItem,
    HazardSource,
    LadderStep,
    SelfCheck,
    SelfCheckAnswer,
    SelfCheckStatus,
    Severity,
)
from portal.models.tenants import Tenant
from portal.selfcheck import policies
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.deadlines import DEFAULT_POLICY, Policy, signing_deadline
from portal.selfcheck.hazards.services import OpenHazard, open_hazard
from portal.selfcheck.policies import ActorKind, HazardActor
from portal.selfcheck.signing.services import canonical_hash
from portal.tenants.services import roles_of


class SelfCheckRefused(Refused):
    """A refused step; ``code`` names it for a translated message, ``items`` the item codes concerned."""

    def __init__(self, code: str, *, items: Sequence[str] = ()) -> None:
        super().__init__(code)
        self.items = list(items)


async def ensure_selfcheck(
    session: AsyncSession, tenant: Tenant, period: str, *, policy: Policy = DEFAULT_POLICY
) -> SelfCheck | None:
    """The tenant's self-check for ``period``, created if missing (idempotent). ``None`` if no checklist
    applies to the tenant."""
    existing = (
        await session.execute(
            select(SelfCheck).where(SelfCheck.tenant_id == tenant.id, SelfCheck.period == period)
        )
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    checklist = await catalogue.checklist_for(session, tenant)
    if checklist is None:
        return None
    sc = SelfCheck(
        tenant_id=tenant.id,
        checklist_id=checklist.id,
        period=period,
        status=SelfCheckStatus.DUE,
        deadline_at=signing_deadline(period, policy),
    )
    session.add(sc)
    await session.flush()
    await audit.record(
        session,
        "selfcheck.created",
        tenant_id=tenant.id,
        object_type="selfcheck",
        object_id=sc.id,
        detail={"period": period, "checklist": checklist.code, "version": checklist.version},
    )
    return sc


async def load(session: AsyncSession, selfcheck_id: uuid.UUID) -> SelfCheck | None:
    """A self-check in scope with its checklist items and answers (``None`` → 404)."""
    return (
        await session.execute(
            select(SelfCheck)
            .where(SelfCheck.id == selfcheck_id)
            .options(
                selectinload(SelfCheck.answers),
                selectinload(SelfCheck.checklist).selectinload(catalogue.Checklist.items),
            )
        )
    ).scalar_one_or_none()


def _item(sc: SelfCheck, item_code: str) -> ChecklistItem:
    for item in sc.checklist.items:
        if item.code == item_code:
            return item
    raise SelfCheckRefused("unknown_item")


async def _require_answerer(session: AsyncSession, sc: SelfCheck, user_id: uuid.UUID) -> None:
    if not policies.may_answer(await roles_of(session, sc.tenant_id, user_id)):
        raise NotAllowed(_(policies.ONLY_ANSWERABLE_FILL_IN))


async def answer(
    session: AsyncSession,
    sc: SelfCheck,
    item_code: str,
    value: Answer,
    *,
    user_id: uuid.UUID,
    note: str = "",
    now: datetime | None = None,
) -> SelfCheckAnswer:
    """Save one answer (save-as-you-go). Refused once the self-check is submitted."""
    await _require_answerer(session, sc, user_id)
    if sc.status not in (SelfCheckStatus.DUE, SelfCheckStatus.IN_PROGRESS):
        raise SelfCheckRefused("already_submitted")
    item = _item(sc, item_code)
    now = now or datetime.now(UTC)
    note = note.strip()[:2000]
    if value is Answer.FAIL and not note:
        raise SelfCheckRefused("fail_needs_note")
    row = next((a for a in sc.answers if a.item_code == item_code), None)
    if row is None:
        row = SelfCheckAnswer(
            tenant_id=sc.tenant_id,
            selfcheck_id=sc.id,
            item_id=item.id,
            item_code=item_code,
            answer=value,
            note=note,
            answered_by_id=user_id,
            answered_at=now,
        )
        session.add(row)
        sc.answers.append(row)
    else:
        row.answer, row.note, row.answered_by_id, row.answered_at = value, note, user_id, now
    if sc.status is SelfCheckStatus.DUE:
        sc.status = SelfCheckStatus.IN_PROGRESS
        sc.started_at = now
    await session.flush()
    return row


@dataclass(frozen=True)
class Progress:
    answered: int
    total: int
    failed: int

    @property
    def complete(self) -> bool:
        return self.answered == self.total


def progress(sc: SelfCheck) -> Progress:
    return Progress(
        len(sc.answers), len(sc.checklist.items), sum(a.answer is Answer.FAIL for a in sc.answers)
    )


def canonical_report(
    sc: SelfCheck, tenant: Tenant, photos: Mapping[uuid.UUID, list[str]] | None = None
) -> dict[str, object]:
    """The frozen content of a report: what is hashed, signed and re-verified later. ``photos`` (answer id
    → SHA-256 of its photos, from :func:`answer_photos`) puts the photos under the signature too."""
    answers = sorted(sc.answers, key=lambda a: a.item_code)
    photos = photos or {}
    return {
        "type": "monthly-selfcheck",
        "tenant": {"id": str(tenant.id), "code": tenant.code, "name": tenant.name_zh, "uscc": tenant.uscc},
        "period": sc.period,
        "checklist": {"code": sc.checklist.code, "version": sc.checklist.version},
        "answers": [
            {"item": a.item_code, "answer": a.answer.value, "note": a.note, "photos": photos.get(a.id, [])}
            for a in answers
        ],
        "submitted_at": sc.submitted_at.astimezone(UTC).isoformat() if sc.submitted_at else None,
    }


async def answer_photos(session: AsyncSession, sc: SelfCheck) -> dict[uuid.UUID, list[str]]:
    """The SHA-256 of every photo attached to each answer (sorted): what the signature covers."""
    from portal.models.evidence import Evidence, OwnerType, StoredObject

    ids = [a.id for a in sc.answers]
    if not ids:
        return {}
    rows = await session.execute(
        select(Evidence.owner_id, StoredObject.sha256)
        .join(StoredObject, StoredObject.id == Evidence.object_id)
        .where(
            Evidence.tenant_id == sc.tenant_id,
            Evidence.owner_type == OwnerType.SELFCHECK_ITEM,
            Evidence.owner_id.in_(ids),
        )
    )
    found: dict[uuid.UUID, list[str]] = {}
    for owner_id, sha in rows.all():
        found.setdefault(owner_id, []).append(sha)
    return {k: sorted(v) for k, v in found.items()}


async def frozen_hash(session: AsyncSession, sc: SelfCheck, tenant: Tenant) -> str:
    """The report's hash as the database holds it now (answers, notes and photos)."""
    return report_hash(canonical_report(sc, tenant, await answer_photos(session, sc)))


def report_hash(report: dict[str, object]) -> str:
    return canonical_hash(report)


TITLE_LENGTH = 60


def finding_title(note: str) -> str:
    """A hazard is titled by what was found (the note a failed answer must carry), not by the checklist's
    requirement, which says how things should be: its first line, shortened to fit a list."""
    first = note.strip().splitlines()[0].strip() if note.strip() else ""
    return first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1].rstrip() + "…"


async def submit(
    session: AsyncSession,
    sc: SelfCheck,
    tenant: Tenant,
    *,
    user_id: uuid.UUID,
    now: datetime | None = None,
    policy: Policy = DEFAULT_POLICY,
) -> list[uuid.UUID]:
    """Freeze the answers and open a hazard per failed item. Returns the new hazard ids."""
    await _require_answerer(session, sc, user_id)
    if sc.status not in (SelfCheckStatus.DUE, SelfCheckStatus.IN_PROGRESS):
        raise SelfCheckRefused("already_submitted")
    if not progress(sc).complete:
        raise SelfCheckRefused("incomplete")
    photos = await answer_photos(session, sc)
    items = {i.code: i for i in sc.checklist.items}
    missing = sorted(
        a.item_code
        for a in sc.answers
        if a.answer is Answer.FAIL and items[a.item_code].photo_required and not photos.get(a.id)
    )
    if missing:
        raise SelfCheckRefused("photo_required", items=missing)
    now = now or datetime.now(UTC)
    sc.status = SelfCheckStatus.SUBMITTED
    sc.submitted_at = now
    sc.submitted_by_id = user_id
    sc.report_sha256 = report_hash(canonical_report(sc, tenant, photos))
    actor = HazardActor(ActorKind.MEMBER, user_id)
    opened = []
    for a in sorted(sc.answers, key=lambda a: a.item_code):
        if a.answer is not Answer.FAIL:
            continue
        item = items[a.item_code]
        hazard = await open_hazard(
            session,
            sc.tenant_id,
            OpenHazard(
                source=HazardSource.SELFCHECK,
                title=finding_title(a.note),
                severity=Severity(item.severity),
                item=item,
                note=a.note,
                selfcheck_id=sc.id,
            ),
            actor,
            now=now,
            policy=policy,
        )
        opened.append(hazard.id)
    await session.flush()
    await audit.record(
        session,
        "selfcheck.submitted",
        tenant_id=sc.tenant_id,
        object_type="selfcheck",
        object_id=sc.id,
        detail={"period": sc.period, "sha256": sc.report_sha256, "hazards": [str(h) for h in opened]},
    )
    await _ask_for_signature(session, sc, tenant, submitted_by=user_id)
    return opened


async def _ask_for_signature(
    session: AsyncSession, sc: SelfCheck, tenant: Tenant, *, submitted_by: uuid.UUID
) -> None:
    """The report is not done until the responsible person signs it: they are told it waits for them."""
    from portal.notify.services import notify_in_own_language
    from portal.selfcheck.ladder import people_on_step

    people = [
        p for p in await people_on_step(session, tenant, LadderStep.RESPONSIBLE, None) if p != submitted_by
    ]

    def message() -> tuple[str, str]:
        return (
            _("The self-check report of %(period)s waits for your signature", period=sc.period),
            _(
                "Read it, then sign it with your passkey by %(date)s.",
                date=sc.deadline_at.astimezone(clock.zone()).date().isoformat(),
            ),
        )

    await notify_in_own_language(
        session,
        people,
        "selfcheck.sign",
        message,
        f"/t/{tenant.id}/selfchecks/{sc.id}",
        f"sign:{sc.id}",
        tenant_id=tenant.id,
    )


async def mark_signed(
    session: AsyncSession,
    sc: SelfCheck,
    *,
    user_id: uuid.UUID,
    signed_sha256: str,
    evidence: Mapping[str, Any],
    now: datetime | None = None,
) -> SelfCheck:
    """Record the responsible person's signature over the frozen report (the WebAuthn assertion itself is
    verified and stored by the signing service before this is called; ``evidence`` is what it says the
    audit entry must record of it, for every later verification)."""
    refused = policies.why_not_sign_report(await roles_of(session, sc.tenant_id, user_id), sc)
    if refused is not None:
        raise SelfCheckRefused(refused)
    if signed_sha256 != sc.report_sha256:
        raise SelfCheckRefused("report_changed")
    sc.status = SelfCheckStatus.SIGNED
    sc.signed_at = now or datetime.now(UTC)
    sc.signed_by_id = user_id
    await session.flush()
    await audit.record(
        session,
        "selfcheck.signed",
        tenant_id=sc.tenant_id,
        object_type="selfcheck",
        object_id=sc.id,
        detail={"period": sc.period, "sha256": sc.report_sha256, "signature": dict(evidence)},
    )
    return sc


def mark_overdue(sc: SelfCheck, now: datetime) -> bool:
    if sc.status is not SelfCheckStatus.SIGNED and sc.overdue_at is None and sc.deadline_at < now:
        sc.overdue_at = now
        return True
    return False


async def list_for_tenant(session: AsyncSession, tenant_id: uuid.UUID, *, limit: int = 24) -> list[SelfCheck]:
    """The tenant's self-checks, newest period first (two years by default)."""
    rows = await session.execute(
        select(SelfCheck)
        .where(SelfCheck.tenant_id == tenant_id)
        .order_by(SelfCheck.period.desc())
        .limit(limit)
    )
    return list(rows.scalars())


def sections(sc: SelfCheck) -> list[tuple[str, str, list[tuple[ChecklistItem, SelfCheckAnswer | None]]]]:
    """Items grouped by section in checklist order, each with its answer so far."""
    answers = {a.item_code: a for a in sc.answers}
    grouped: dict[str, tuple[str, str, list[tuple[ChecklistItem, SelfCheckAnswer | None]]]] = {}
    for item in sc.checklist.items:
        entry = grouped.setdefault(item.section_zh, (item.section_zh, item.section_en, []))
        entry[2].append((item, answers.get(item.code)))
    return list(grouped.values())
