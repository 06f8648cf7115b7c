"""The monthly report as a PDF, on both databases: what it says (read back with pypdf), its fonts, its
photos, and who gets it (refusal before submission, 404 across tenants, an audit entry from outside)."""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from datetime import UTC, datetime
from typing import cast

from litestar.testing import AsyncTestClient
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import DictionaryObject
from sqlalchemy import select

from portal.config import Settings
from portal.core import clock, i18n
from portal.core.db import Database
from portal.core.storage import ObjectStorage
from portal.core.tenancy import Scope
from portal.demo.softauthn import SoftAuthenticator
from portal.evidence import derivatives
from portal.evidence import services as evidence
from portal.models.audit import AuditEntry
from portal.models.evidence import OwnerType
from portal.models.identity import Passkey, User
from portal.models.selfcheck import Answer, Hazard, HazardSource, SelfCheck, SelfCheckStatus, Severity
from portal.models.tenants import Tenant
from portal.selfcheck.hazards.services import Action, OpenHazard, open_hazard, transition
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.policies import ActorKind, HazardActor
from portal.selfcheck.reports import pdf as report_pdf
from portal.selfcheck.reports import services as reports
from portal.selfcheck.signing import services as signing
from tests.fixtures.factories import World
from tests.fixtures.web import sign_in
from tests.identity.helpers import give_passkey
from tests.selfcheck.cycle import open_selfcheck

PERIOD = "2026-10"
FAILED_NOTE = "两具灭火器压力不足"
WARDEN_HAZARD = "楼道内停放电动自行车"
CLOSED_HAZARD = "安全出口指示灯不亮"
OLD_HAZARD = "八月份仍未整改的隐患"


def at(day: int, hour: int = 10, month: int = 10) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=clock.zone()).astimezone(UTC)


def tr(locale: str, message: str, **params: object) -> str:
    """What the app says in ``locale`` (new message ids read the same before and after the lead merges
    their Chinese into the catalogue)."""
    previous = i18n.current_locale()
    i18n.set_locale(locale)
    try:
        return i18n.gettext(message, **params)
    finally:
        i18n.set_locale(previous)


def flat(text: str) -> str:
    # Lines wrap anywhere in Chinese text: compare without whitespace.
    return re.sub(r"\s+", "", text)


def pdf_text(data: bytes) -> tuple[str, PdfReader]:
    reader = PdfReader(io.BytesIO(data))
    return flat("".join(page.extract_text() or "" for page in reader.pages)), reader


def fonts_of(reader: PdfReader) -> set[str]:
    names = set()
    for page in reader.pages:
        resources = cast(DictionaryObject, page["/Resources"].get_object())
        fonts = cast(DictionaryObject, resources["/Font"].get_object()) if "/Font" in resources else {}
        for ref in fonts.values():
            names.add(str(cast(DictionaryObject, ref.get_object())["/BaseFont"]))
    return names


def photo(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 40 + seed, 40)).save(out, "JPEG", quality=80)
    return out.getvalue()


async def attach_photo(
    database: Database,
    storage: ObjectStorage,
    tenant_id: uuid.UUID,
    owner: tuple[OwnerType, uuid.UUID],
    uploader: uuid.UUID,
    *,
    seed: int,
    process: bool,
) -> None:
    """Slot → bytes in storage → completion, through the evidence services; optionally the worker's job."""
    data = photo(seed)
    who = evidence.Uploader(uploader, "管理人")
    limits = evidence.Limits(max_upload=5 * evidence.MB, quota=50 * evidence.MB)
    client_id = uuid.uuid4()
    async with database.session(Scope.tenant(tenant_id)) as s:
        answer = await evidence.request_slot(
            s,
            storage,
            client_id=client_id,
            owner_type=owner[0],
            owner_id=owner[1],
            content_type="image/jpeg",
            size=len(data),
            filename=f"现场{seed}.jpg",
            uploader=who,
            limits=limits,
        )
        await storage.put(answer.slot.key, data, "image/jpeg")
        done = await evidence.complete_upload(s, storage, client_id=client_id, uploader=who, limits=limits)
        object_id = done.object_id
    if process:
        async with database.session(Scope.system("test: process photo")) as s:
            await derivatives.process_object(s, storage, object_id)


async def submitted(
    database: Database,
    world: World,
    key: str,
    period: str,
    *,
    fail: bool,
    storage: ObjectStorage | None = None,
) -> tuple[SelfCheck, Tenant]:
    """A self-check of ``period`` answered on the 20th (one item failed if ``fail``, one not applicable),
    with a processed photo of the failed item when ``storage`` is given (before submission freezes it)."""
    tenant = world.tenants[key]
    manager = world.users[f"manager_{key}"].id
    sc, t = await open_selfcheck(database, tenant, period)
    async with database.session(Scope.tenant(tenant.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        assert loaded is not None
        year, month = (int(x) for x in period.split("-"))
        when = datetime(year, month, 20, 10, tzinfo=clock.zone()).astimezone(UTC)
        for n, item in enumerate(loaded.checklist.items):
            value, note = Answer.PASS, ""
            if n == 0 and fail:
                value, note = Answer.FAIL, FAILED_NOTE
            elif n == 1:
                value = Answer.NOT_APPLICABLE
            await sc_services.answer(s, loaded, item.code, value, user_id=manager, note=note, now=when)
        failed = next((a.id for a in loaded.answers if a.answer is Answer.FAIL), None)
    if storage is not None and failed is not None:
        owner = (OwnerType.SELFCHECK_ITEM, failed)
        await attach_photo(database, storage, tenant.id, owner, manager, seed=3, process=True)
    async with database.session(Scope.tenant(tenant.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        assert loaded is not None
        await sc_services.submit(s, loaded, t, user_id=manager, now=when)
        return loaded, t


async def test_signed_report_with_hazards_photos_and_verification(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    a = world.tenants["a"]
    manager, responsible = world.users["manager_a"].id, world.users["both"].id
    # Hazards around the period: one a warden found in it, one opened in September and closed in it, one
    # from August still open (not part of October's report).
    warden = HazardActor(ActorKind.WARDEN, world.users["warden"].id)
    boss = HazardActor(ActorKind.MEMBER, manager, can_verify=True)
    async with database.session(Scope.tenant(a.id)) as s:
        found = OpenHazard(HazardSource.WARDEN, WARDEN_HAZARD, Severity.MAJOR, note="堵塞疏散通道")
        await open_hazard(s, a.id, found, warden, now=at(12))
        fixed = await open_hazard(
            s,
            a.id,
            OpenHazard(HazardSource.PATROL, CLOSED_HAZARD, Severity.GENERAL),
            boss,
            now=at(10, month=9),
        )
        await transition(s, fixed, Action.START, boss, now=at(1))
        await transition(
            s, fixed, Action.SUBMIT_FIX, boss, reason="已更换灯管", evidence_ids=["x"], now=at(2)
        )
        await transition(s, fixed, Action.VERIFY, boss, now=at(3))
        old = OpenHazard(HazardSource.PATROL, OLD_HAZARD, Severity.GENERAL)
        await open_hazard(s, a.id, old, boss, now=at(5, month=8))
    storage: ObjectStorage = client.app.state.storage
    sc, tenant = await submitted(database, world, "a", PERIOD, fail=True, storage=storage)
    # The responsible person signs with a passkey (a software authenticator), on the 25th.
    phone = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    passkey_id = await give_passkey(database, settings, responsible, phone)
    async with database.session(Scope.tenant(a.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        signer = await s.get(User, responsible)
        assert loaded is not None and signer is not None
        options, ceremony = signing.signing_options(
            settings, reports.document_of(loaded), [phone.credentials[0].credential_id]
        )
        await reports.sign_report(
            s, settings, ceremony, phone.get(options), sc=loaded, tenant=tenant, signer=signer, now=at(25, 9)
        )
        key = hashlib.sha256((await s.get(Passkey, passkey_id)).public_key).hexdigest()  # type: ignore[union-attr]
        failed_item = loaded.checklist.items[0]
        hazard_id = (await s.execute(select(Hazard.id).where(Hazard.selfcheck_id == sc.id))).scalar_one()
    await attach_photo(database, storage, a.id, (OwnerType.HAZARD, hazard_id), manager, seed=1, process=True)
    await attach_photo(database, storage, a.id, (OwnerType.HAZARD, hazard_id), manager, seed=2, process=False)

    await sign_in(client, world.users["manager_a"].login)
    form = await client.get(f"/t/{a.id}/selfchecks/{sc.id}")
    assert f"/t/{a.id}/selfchecks/{sc.id}/report.pdf" in form.text
    response = await client.get(f"/t/{a.id}/selfchecks/{sc.id}/report.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and f"selfcheck-{tenant.code}-{PERIOD}.pdf" in disposition
    assert response.content.startswith(b"%PDF-")

    text, reader = pdf_text(response.content)
    for expected in (
        "测试单位a",
        tenant.uscc or "",
        "测试路1号",
        tr("zh_CN", "general unit"),
        PERIOD,
        f"{loaded.checklist.code}v{loaded.checklist.version}",
        failed_item.text_zh,
        loaded.checklist.items[2].text_zh,
        FAILED_NOTE,
        tr("zh_CN", "Fail"),
        tr("zh_CN", "Not applicable"),
        WARDEN_HAZARD,
        CLOSED_HAZARD,
        tr("zh_CN", "suspected major hazard"),
        tr("zh_CN", "closed"),
        tr(
            "zh_CN",
            "Signed by %(name)s at %(time)s (%(zone)s)",
            name="两边的人",
            time="2026-10-25 09:00",
            zone="Asia/Shanghai",
        ),
        tr("zh_CN", "Photo %(name)s: the thumbnail is not processed yet.", name="现场2.jpg"),
        f"/verify/report/{sc.id}",
    ):
        assert flat(expected) in text, expected
    assert OLD_HAZARD not in text
    assert tr("zh_CN", "Not signed yet") not in text
    # The key the signature was made with, as the audit log recorded it at registration.
    assert key in text and flat(tr("zh_CN", "Passkey registered on")) in text
    assert flat(tr("zh_CN", "signature cannot be verified")) not in text
    groups = report_pdf.verification_groups(loaded.report_sha256 or "")
    assert len(groups) == 16 and all(g in text for g in groups)
    # Subset names read "/ABCDEF+Noto-Sans-CJK-SC" (HarfBuzz) or "/ABCDEF+NotoSansCJKsc-Regular".
    assert any("NotoSansCJK" in name.replace("-", "") for name in fonts_of(reader)), fonts_of(reader)
    # The processed thumbnails (320 px) of the failed answer and of its hazard are embedded as pictures;
    # the QR code is vector art. WeasyPrint shares one resource dictionary between pages: count distinct.
    images = {(i.name, i.image.size if i.image else None) for page in reader.pages for i in page.images}
    assert len(images) == 2 and {size for _n, size in images} == {(320, 240)}, images
    # A member reading its own tenant's report leaves no cross-tenant read.
    async with database.session(Scope.tenant(a.id)) as s:
        reads = (
            await s.execute(
                select(AuditEntry).where(AuditEntry.tenant_id == a.id, AuditEntry.action == "tenant.read")
            )
        ).scalars()
        assert not [r for r in reads if r.detail.get("page") == "selfcheck_report"]


async def test_unsigned_report_in_english_refusal_before_submission_and_foreign_404(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    sc, _tenant = await submitted(database, world, "a", PERIOD, fail=False)
    async with database.session(Scope.system("test")) as s:
        tenant_a = await s.get(Tenant, a.id)
        assert tenant_a is not None
        due = await sc_services.ensure_selfcheck(s, tenant_a, "2026-11")
        assert due is not None
    url = f"/t/{a.id}/selfchecks/{sc.id}/report.pdf"

    # The district's regulator downloads it in English; the read goes on tenant a's audit chain.
    await sign_in(client, world.users["regulator"].login, ctx=f"regulator:{world.d1.id}")
    response = await client.get(url + "?lang=en")
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    text, _reader = pdf_text(response.content)
    for expected in (
        "Unit a",
        "Monthly fire-safety self-check report",
        PERIOD,
        tr("en", "Not signed yet"),
        tr("en", "No hazard was opened in this period."),
        *report_pdf.verification_groups(sc.report_sha256 or ""),
    ):
        assert flat(expected) in text, expected
    assert flat(tr("en", "Page %(page)s of %(pages)s", page="1", pages="")) in text
    async with database.session(Scope.tenant(a.id)) as s:
        reads = (
            await s.execute(
                select(AuditEntry).where(AuditEntry.tenant_id == a.id, AuditEntry.action == "tenant.read")
            )
        ).scalars()
        assert [r.detail for r in reads if r.detail.get("page") == "selfcheck_report"] == [
            {"as": "regulator", "via": "web", "page": "selfcheck_report", "period": PERIOD}
        ]

    # Before submission there is no report: a clear refusal, and nothing changes.
    await sign_in(client, world.users["manager_a"].login)
    refused = await client.get(f"/t/{a.id}/selfchecks/{due.id}/report.pdf")
    assert refused.status_code == 409
    assert (
        tr(
            "zh_CN",
            "The report exists once the self-check is submitted. Answer every item and submit it first.",
        )
        in refused.text
    )
    form = await client.get(f"/t/{a.id}/selfchecks/{due.id}")
    assert "report.pdf" not in form.text
    async with database.session(Scope.tenant(a.id)) as s:
        still = await s.get(SelfCheck, due.id)
        assert still is not None and still.status is SelfCheckStatus.DUE

    # Tenant b's manager: tenant a's report is not there, whichever tenant the URL names.
    await sign_in(client, world.users["manager_b"].login)
    assert (await client.get(f"/t/{b.id}/selfchecks/{sc.id}/report.pdf")).status_code == 404
    assert (await client.get(url)).status_code == 404
    assert (await client.get(f"/t/{a.id}/selfchecks/{uuid.uuid4()}/report.pdf")).status_code == 404


def test_verification_code_filename_and_period_bounds() -> None:
    assert report_pdf.verification_groups("0123456789abcdef" * 4)[:5] == [
        "0123",
        "4567",
        "89ab",
        "cdef",
        "0123",
    ]
    start, end = report_pdf.period_bounds("2026-12", "Asia/Shanghai")
    assert start == datetime(2026, 11, 30, 16, tzinfo=UTC) and end == datetime(2026, 12, 31, 16, tzinfo=UTC)
    i18n.set_locale("en")
    try:
        assert report_pdf.page_counter_css() == '"Page " counter(page) " of " counter(pages)'
    finally:
        i18n.set_locale(i18n.DEFAULT_LOCALE)
