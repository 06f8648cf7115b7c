"""Loading and choosing checklists. The catalogue is data (YAML), loaded by ``portal checklists load``.

Publishing rules: a (code, version) is immutable once loaded — loading the same file again changes
nothing, loading a different text under the same version is refused. Loading a higher version
publishes it and marks the previous one superseded; self-checks that started with the old version keep
their ``checklist_id`` and so their items.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from portal.audit import services as audit
from portal.models.selfcheck import Checklist, ChecklistItem, ChecklistStatus
from portal.models.tenants import Tenant
from portal.selfcheck.checklists.schemas import ChecklistFile

CATALOGUE_DIR = Path(__file__).resolve().parent / "data"


class CatalogueError(ValueError):
    """A catalogue file is malformed or conflicts with what is loaded; the message names file and rule."""


@dataclass(frozen=True)
class LoadResult:
    code: str
    version: int
    outcome: str  # "published", "unchanged"


def parse(path: Path) -> ChecklistFile:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        return ChecklistFile.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise CatalogueError(f"{path.name}: {exc}") from exc


def _sha(doc: ChecklistFile) -> str:
    canonical = json.dumps(
        doc.model_dump(mode="json"), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def load_file(session: AsyncSession, doc: ChecklistFile) -> LoadResult:
    sha = _sha(doc)
    existing = (
        await session.execute(
            select(Checklist).where(Checklist.code == doc.code, Checklist.version == doc.version)
        )
    ).scalar_one_or_none()
    if existing is not None:
        if existing.source_sha256 != sha:
            raise CatalogueError(
                f"{doc.code} v{doc.version} was loaded with other content: a change needs a new version"
            )
        return LoadResult(doc.code, doc.version, "unchanged")
    newer = (
        await session.execute(
            select(Checklist.version).where(Checklist.code == doc.code, Checklist.version > doc.version)
        )
    ).first()
    if newer is not None:
        raise CatalogueError(f"{doc.code} v{doc.version} is older than the loaded v{newer[0]}")
    previous = (
        (
            await session.execute(
                select(Checklist).where(
                    Checklist.code == doc.code, Checklist.status == ChecklistStatus.PUBLISHED
                )
            )
        )
        .scalars()
        .all()
    )
    for old in previous:
        old.status = ChecklistStatus.SUPERSEDED
    checklist = Checklist(
        code=doc.code,
        version=doc.version,
        title_zh=doc.title.zh,
        title_en=doc.title.en,
        performed_by=doc.performed_by,
        frequency=doc.frequency,
        applies_to=[s.model_dump() for s in doc.applies_to],
        status=ChecklistStatus.PUBLISHED,
        published_at=datetime.now(UTC),
        source_sha256=sha,
    )
    session.add(checklist)
    await session.flush()
    session.add_all(
        ChecklistItem(
            checklist_id=checklist.id,
            position=pos,
            code=i.code,
            section_zh=i.section.zh,
            section_en=i.section.en,
            text_zh=i.text.zh,
            text_en=i.text.en,
            basis=i.basis,
            severity=i.severity_if_failed,
            why_zh=i.why.zh,
            why_en=i.why.en,
            how_to_fix_zh=i.how_to_fix.zh,
            how_to_fix_en=i.how_to_fix.en,
            photo_required=i.photo_required,
            immediate_fix_possible=i.immediate_fix_possible,
        )
        for pos, i in enumerate(doc.items, start=1)
    )
    await session.flush()
    await audit.record(
        session,
        "checklist.published",
        tenant_id=None,
        object_type="checklist",
        object_id=checklist.id,
        detail={"code": doc.code, "version": doc.version, "items": len(doc.items), "sha256": sha},
    )
    return LoadResult(doc.code, doc.version, "published")


async def load_catalogue(session: AsyncSession, paths: Iterable[Path] | None = None) -> list[LoadResult]:
    """Load every file (default: the bundled catalogue). All files are parsed before anything is written."""
    files = sorted(paths) if paths is not None else sorted(CATALOGUE_DIR.glob("*.yaml"))
    docs = [parse(p) for p in files]
    return [await load_file(session, doc) for doc in sorted(docs, key=lambda d: (d.code, d.version))]


def applies(checklist: Checklist, tenant: Tenant) -> bool:
    category = tenant.category.value if tenant.category else None
    return any(
        s["kind"] == tenant.kind.value and (s.get("category") is None or s.get("category") == category)
        for s in checklist.applies_to
    )


async def checklist_for(
    session: AsyncSession, tenant: Tenant, *, performed_by: str = "tenant", frequency: str = "monthly"
) -> Checklist | None:
    """The published checklist a tenant runs (its kind and category decide), with its items loaded."""
    rows = (
        (
            await session.execute(
                select(Checklist)
                .where(
                    Checklist.status == ChecklistStatus.PUBLISHED,
                    Checklist.performed_by == performed_by,
                    Checklist.frequency == frequency,
                )
                .options(selectinload(Checklist.items))
                .order_by(Checklist.code)
            )
        )
        .scalars()
        .all()
    )
    matching = [c for c in rows if applies(c, tenant)]
    return matching[0] if matching else None
