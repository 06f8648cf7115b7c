"""Photos of self-check answers: a failed photo-required item needs one before submission, submission
freezes them (no more uploads), and the report's hash — hence its signature — covers them."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import delete, func, select

from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.evidence import services as evidence
from portal.models.evidence import Evidence, OwnerType
from portal.models.selfcheck import Answer, Hazard, SelfCheck, SelfCheckStatus
from portal.models.tenants import Tenant
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.monthly import services as sc_services
from tests.fixtures.factories import World
from tests.fixtures.web import post_form, sign_in
from tests.identity.helpers import page_text, zh
from tests.selfcheck.photos import attach_photo

PERIOD = "2026-03"


async def _answered(database: Database, world: World, key: str = "a") -> tuple[SelfCheck, str, object]:
    """Every item passed except one photo-required item, failed; returns the self-check, that item's code
    and its answer's id."""
    tenant = world.tenants[key]
    manager = world.users[f"manager_{key}"]
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
        t = await s.get(Tenant, tenant.id)
        sc = await sc_services.ensure_selfcheck(s, t, PERIOD)  # type: ignore[arg-type]
        assert sc is not None
        loaded = await sc_services.load(s, sc.id)
        assert loaded is not None
        needs_photo = next(i for i in loaded.checklist.items if i.photo_required)
        failed_id = None
        for item in loaded.checklist.items:
            if item.code == needs_photo.code:
                a = await sc_services.answer(
                    s, loaded, item.code, Answer.FAIL, note="疏散指示灯不亮", user_id=manager.id
                )
                failed_id = a.id
            else:
                await sc_services.answer(s, loaded, item.code, Answer.PASS, user_id=manager.id)
    return sc, needs_photo.code, failed_id


async def test_failed_photo_item_needs_a_photo_and_submission_freezes_it(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    a = world.tenants["a"]
    sc, code, answer_id = await _answered(database, world)
    await sign_in(client, world.users["manager_a"].login)
    refused = await post_form(client, f"/t/{a.id}/selfchecks/{sc.id}/submit", {"confirm": "on"})
    assert refused.status_code == 422
    message = zh("Add a photo of the problem to each failed item that needs one: %(items)s.", items=code)
    assert message in page_text(refused)
    async with database.session(Scope.tenant(a.id)) as s:
        row = await s.get(SelfCheck, sc.id)
        assert row is not None and row.status is SelfCheckStatus.IN_PROGRESS and row.report_sha256 is None
        hazards = (
            await s.execute(select(func.count()).select_from(Hazard).where(Hazard.selfcheck_id == sc.id))
        ).scalar()
        assert hazards == 0

    page = await client.get(f"/t/{a.id}/selfchecks/{sc.id}")
    assert f'data-owner-id="{answer_id}"' in page.text  # the uploader of the failed item's photos

    await attach_photo(database, settings, a.id, answer_id, world.users["manager_a"].id)  # type: ignore[arg-type]
    done = await post_form(client, f"/t/{a.id}/selfchecks/{sc.id}/submit", {"confirm": "on"})
    assert done.status_code == 303

    async with database.session(Scope.tenant(a.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        tenant = await s.get(Tenant, a.id)
        assert loaded is not None and tenant is not None and loaded.report_sha256
        photos = await sc_services.answer_photos(s, loaded)
        [shas] = photos.values()
        report = sc_services.canonical_report(loaded, tenant, photos)
        [failed] = [x for x in report["answers"] if x["item"] == code]  # type: ignore[union-attr, index]
        assert failed["photos"] == shas and len(shas) == 1
        assert await sc_services.frozen_hash(s, loaded, tenant) == loaded.report_sha256

    # Submitted: no more photos for its answers.
    with pytest.raises(evidence.EvidenceError, match="frozen"):
        await attach_photo(database, settings, a.id, answer_id, world.users["manager_a"].id, seed=2)  # type: ignore[arg-type]
    page = await client.get(f"/t/{a.id}/selfchecks/{sc.id}")
    assert f'data-owner-id="{answer_id}"' not in page.text and "owner_type=selfcheck_item" in page.text

    # A photo removed behind the portal's back changes the report's hash.
    async with database.session(Scope.system("test: tamper")) as s:
        await s.execute(
            delete(Evidence).where(
                Evidence.owner_type == OwnerType.SELFCHECK_ITEM, Evidence.owner_id == answer_id
            )
        )
    async with database.session(Scope.tenant(a.id)) as s:
        loaded = await sc_services.load(s, sc.id)
        tenant = await s.get(Tenant, a.id)
        assert loaded is not None and tenant is not None
        assert await sc_services.frozen_hash(s, loaded, tenant) != loaded.report_sha256


async def test_another_tenants_answer_takes_no_photo(
    database: Database, settings: Settings, world: World
) -> None:
    _sc, _code, answer_id = await _answered(database, world, "b")
    from portal.evidence.owners import EvidenceNotFound

    with pytest.raises(EvidenceNotFound):
        await attach_photo(database, settings, world.tenants["a"].id, answer_id, world.users["manager_a"].id)  # type: ignore[arg-type]
