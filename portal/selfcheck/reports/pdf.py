"""The monthly self-check report as a PDF: what was checked, what failed, the hazards of the period, the
photos, the signature and how to verify it.

:func:`gather` reads everything the report shows from the database (in the caller's scope) and the photo
thumbnails from object storage; :func:`render_html` fills the print template in the request's language;
:func:`render_pdf` turns it into a PDF with WeasyPrint in a worker thread (a render takes about a second of
CPU, which must not stall the event loop). Only a submitted or signed self-check has a report: before
submission the answers can still change, so there is nothing to print or to verify.
"""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
import segno
import structlog
from jinja2 import Environment
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from portal.core import clock
from portal.core.i18n import _
from portal.core.storage import ObjectStorage, StorageError
from portal.models.evidence import Evidence, OwnerType, Processing
from portal.models.identity import User
from portal.models.selfcheck import Answer, ChecklistItem, Hazard, SelfCheck, SelfCheckAnswer, SelfCheckStatus
from portal.models.tenants import Tenant
from portal.selfcheck.deadlines import parse_period
from portal.selfcheck.monthly import services
from portal.selfcheck.reports import services as reports
from portal.selfcheck.signing.verification import Verification

log = structlog.get_logger("portal.selfcheck.report")

TEMPLATE = "selfcheck/report_pdf.html"
REPORTABLE = (SelfCheckStatus.SUBMITTED, SelfCheckStatus.SIGNED)
# A report with dozens of photos per item would take long to render and be unreadable on paper: the first
# few thumbnails tell the story, the rest are counted.
MAX_PHOTOS_PER_OWNER = 6
# WeasyPrint renders are CPU-bound: at most this many at once per process, so that a burst of downloads
# queues instead of starving the web process (2 cores) of the CPU it needs to answer pages.
_RENDERS = threading.BoundedSemaphore(2)


class ReportRefused(ValueError):
    """No report for this self-check (yet); ``code`` names why for a translated message."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Photo:
    """A thumbnail as a ``data:`` URI, or why there is none (``pending``, ``document``, ``unavailable``)."""

    filename: str
    data_uri: str | None = None
    missing: str = ""


@dataclass(frozen=True)
class PhotoSet:
    photos: list[Photo] = field(default_factory=list)
    more: int = 0  # photos not printed (over MAX_PHOTOS_PER_OWNER)


@dataclass(frozen=True)
class ReportItem:
    item: ChecklistItem
    answer: SelfCheckAnswer | None
    photos: PhotoSet


@dataclass(frozen=True)
class ReportSection:
    title_zh: str
    title_en: str
    items: list[ReportItem]


@dataclass(frozen=True)
class ReportHazard:
    hazard: Hazard
    photos: PhotoSet


@dataclass(frozen=True)
class ReportData:
    tenant: Tenant
    selfcheck: SelfCheck
    sections: list[ReportSection]
    opened: list[ReportHazard]  # opened by this self-check or otherwise during the period
    closed: list[ReportHazard]  # closed during the period, whenever they were opened
    progress: services.Progress
    not_applicable: int
    signer_name: str | None
    verification: Verification | None  # the signature re-checked against the audit chain (None: unsigned)
    verify_url: str
    qr_data_uri: str
    timezone: str
    generated_at: datetime

    @property
    def signed(self) -> bool:
        return self.selfcheck.status is SelfCheckStatus.SIGNED

    @property
    def verification_groups(self) -> list[str]:
        return verification_groups(self.selfcheck.report_sha256 or "")

    @property
    def filename(self) -> str:
        return report_filename(self.tenant, self.selfcheck)


def verification_groups(sha256: str) -> list[str]:
    """The report hash in groups of 4 hex characters, the way people read it out and compare it."""
    return [sha256[i : i + 4] for i in range(0, len(sha256), 4)]


def report_filename(tenant: Tenant, sc: SelfCheck) -> str:
    return f"selfcheck-{tenant.code}-{sc.period}.pdf"


def verify_url(base_url: str, sc: SelfCheck) -> str:
    return f"{base_url.rstrip('/')}/verify/report/{sc.id}"


def period_bounds(period: str, timezone: str) -> tuple[datetime, datetime]:
    """The period's month in the display zone (where the unit's month is), as UTC ``[start, end)``."""
    year, month = parse_period(period)
    zone = ZoneInfo(timezone)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


# -- gathering ----------------------------------------------------------------------------------------


async def _hazards_of_period(
    session: AsyncSession, sc: SelfCheck, start: datetime, end: datetime
) -> tuple[list[Hazard], list[Hazard]]:
    opened_clause = or_(Hazard.selfcheck_id == sc.id, and_(Hazard.opened_at >= start, Hazard.opened_at < end))
    closed_clause = and_(Hazard.closed_at.is_not(None), Hazard.closed_at >= start, Hazard.closed_at < end)
    rows = (
        (
            await session.execute(
                select(Hazard)
                .where(Hazard.tenant_id == sc.tenant_id, or_(opened_clause, closed_clause))
                .order_by(Hazard.opened_at, Hazard.id)
            )
        )
        .scalars()
        .all()
    )
    opened = [h for h in rows if h.selfcheck_id == sc.id or start <= h.opened_at < end]
    closed = [h for h in rows if h.closed_at is not None and start <= h.closed_at < end]
    return opened, closed


async def _evidence_by_owner(
    session: AsyncSession, owners: Iterable[tuple[OwnerType, uuid.UUID]]
) -> dict[tuple[OwnerType, uuid.UUID], list[Evidence]]:
    wanted = set(owners)
    if not wanted:
        return {}
    ids = {owner_id for _t, owner_id in wanted}
    rows = (
        (
            await session.execute(
                select(Evidence)
                .where(
                    Evidence.owner_type.in_({t for t, _i in wanted}),
                    Evidence.owner_id.in_(ids),
                )
                .options(selectinload(Evidence.stored))
                .order_by(Evidence.created_at, Evidence.id)
            )
        )
        .scalars()
        .all()
    )
    out: dict[tuple[OwnerType, uuid.UUID], list[Evidence]] = {}
    for row in rows:
        key = (row.owner_type, row.owner_id)
        if key in wanted:
            out.setdefault(key, []).append(row)
    return out


async def _photo(storage: ObjectStorage, evidence: Evidence) -> Photo:
    obj = evidence.stored
    name = evidence.filename or obj.media_type
    if obj.processing is Processing.NOT_NEEDED:  # a PDF: nothing to show on paper but its name
        return Photo(name, missing="document")
    if obj.processing is not Processing.READY or not obj.thumb_key:
        return Photo(name, missing="pending")
    try:
        data = await storage.read(obj.thumb_key)
    except StorageError as exc:
        # A report without one thumbnail is still the report; the gap is noted on the page and logged.
        log.warning("thumbnail unreadable", evidence=str(evidence.id), error=str(exc))
        return Photo(name, missing="unavailable")
    return Photo(name, data_uri="data:image/jpeg;base64," + base64.b64encode(data).decode("ascii"))


async def _photo_set(storage: ObjectStorage, rows: list[Evidence]) -> PhotoSet:
    shown = rows[:MAX_PHOTOS_PER_OWNER]
    return PhotoSet([await _photo(storage, e) for e in shown], more=len(rows) - len(shown))


def qr_data_uri(url: str) -> str:
    # SVG: sharp at any print resolution, and no image library needed.
    return str(segno.make(url, error="m").svg_data_uri(scale=4, border=2))


async def gather(
    session: AsyncSession,
    storage: ObjectStorage,
    tenant: Tenant,
    sc: SelfCheck,
    *,
    base_url: str,
    timezone: str | None = None,
    now: datetime | None = None,
) -> ReportData:
    """Everything the report shows. ``sc`` comes from :func:`services.load` (items and answers loaded);
    ReportRefused when it has no report yet."""
    if sc.status not in REPORTABLE:
        raise ReportRefused("not_submitted")
    timezone = timezone or clock.zone_name()
    start, end = period_bounds(sc.period, timezone)
    opened, closed = await _hazards_of_period(session, sc, start, end)
    # An answer's photos are owned by its answer row (``selfcheck_item``); hazards own theirs.
    owners = [(OwnerType.SELFCHECK_ITEM, a.id) for a in sc.answers]
    owners += [(OwnerType.HAZARD, h.id) for h in (*opened, *closed)]
    evidence = await _evidence_by_owner(session, owners)
    photo_sets: dict[tuple[OwnerType, uuid.UUID], PhotoSet] = {}
    for key, rows in evidence.items():
        photo_sets[key] = await _photo_set(storage, rows)

    def photos(owner_type: OwnerType, owner_id: uuid.UUID | None) -> PhotoSet:
        return photo_sets.get((owner_type, owner_id), PhotoSet()) if owner_id else PhotoSet()

    sections = [
        ReportSection(
            title_zh,
            title_en,
            [
                ReportItem(item, answer, photos(OwnerType.SELFCHECK_ITEM, answer.id if answer else None))
                for item, answer in rows
            ],
        )
        for title_zh, title_en, rows in services.sections(sc)
    ]
    signer = None
    if sc.status is SelfCheckStatus.SIGNED and sc.signed_by_id is not None:
        user = await session.get(User, sc.signed_by_id)
        signer = user.display_name if user is not None else None
    url = verify_url(base_url, sc)
    verification = await reports.verification_of(session, sc, tenant)
    return ReportData(
        tenant=tenant,
        selfcheck=sc,
        sections=sections,
        opened=[ReportHazard(h, photos(OwnerType.HAZARD, h.id)) for h in opened],
        closed=[ReportHazard(h, photos(OwnerType.HAZARD, h.id)) for h in closed],
        progress=services.progress(sc),
        not_applicable=sum(a.answer is Answer.NOT_APPLICABLE for a in sc.answers),
        signer_name=signer,
        verification=verification,
        verify_url=url,
        qr_data_uri=qr_data_uri(url),
        timezone=timezone,
        generated_at=now or datetime.now(UTC),
    )


# -- rendering ----------------------------------------------------------------------------------------


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal that is safe inside ``<style>`` (no quote, backslash or tag)."""
    out = []
    for ch in text:
        if ch in '"\\<>\n' or ord(ch) < 0x20:
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


_COUNTER = {"\x00page\x00": "counter(page)", "\x00pages\x00": "counter(pages)"}


def page_counter_css() -> str:
    """The CSS ``content`` of the footer, "page X of Y" in the page language, with live counters (the
    translated sentence may put them in any order)."""
    text = _("Page %(page)s of %(pages)s", page="\x00page\x00", pages="\x00pages\x00")
    parts = re.split("(\x00pages?\x00)", text)
    return " ".join(_COUNTER.get(part) or _css_string(part) for part in parts if part)


def render_html(env: Environment, data: ReportData) -> str:
    """The print HTML in the current request's language (the same gettext and filters as the pages)."""
    template = env.get_template(TEMPLATE)
    context: dict[str, Any] = {
        "r": data,
        "tenant": data.tenant,
        "sc": data.selfcheck,
        "page_counter": page_counter_css(),
        "generated": _css_string(
            _(
                "Generated %(time)s (%(zone)s)",
                time=data.generated_at.astimezone(ZoneInfo(data.timezone)).strftime("%Y-%m-%d %H:%M"),
                zone=data.timezone,
            )
        ),
    }
    return template.render(context)


def _write_pdf(html: str) -> bytes:
    # Imported here: WeasyPrint loads Pango, which only this render needs.
    from PIL import ImageFile
    from weasyprint import HTML
    from weasyprint.urls import URLFetcher

    # Importing WeasyPrint turned on Pillow's LOAD_TRUNCATED_IMAGES for the whole process; the evidence
    # checks need it off (they also reset it), and every picture in the report is ours and whole.
    ImageFile.LOAD_TRUNCATED_IMAGES = False

    # Everything the report shows is inlined as data: URIs, so the render never reaches the network or
    # the disk (a fetcher per render: it keeps per-request state).
    fetcher = URLFetcher(allowed_protocols={"data"})
    with _RENDERS:
        pdf = HTML(string=html, url_fetcher=fetcher).write_pdf()
    assert pdf is not None
    return bytes(pdf)


async def render_pdf(env: Environment, data: ReportData) -> bytes:
    """The PDF bytes. The HTML is made here, in the request's context (its language); WeasyPrint runs in
    a worker thread."""
    html = render_html(env, data)
    return await anyio.to_thread.run_sync(_write_pdf, html)


async def build(
    session: AsyncSession,
    storage: ObjectStorage,
    env: Environment,
    tenant: Tenant,
    sc: SelfCheck,
    *,
    base_url: str,
    timezone: str | None = None,
) -> tuple[str, bytes]:
    """(file name, PDF bytes) of a self-check's report; ReportRefused before submission."""
    data = await gather(session, storage, tenant, sc, base_url=base_url, timezone=timezone)
    return data.filename, await render_pdf(env, data)


__all__ = [
    "MAX_PHOTOS_PER_OWNER",
    "ReportData",
    "ReportRefused",
    "build",
    "gather",
    "period_bounds",
    "render_html",
    "render_pdf",
    "report_filename",
    "verification_groups",
    "verify_url",
]
