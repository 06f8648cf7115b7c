"""The cycle's rules hold in the services themselves, whoever calls them (no route is involved here), and
the pages' buttons ask the same rules. "both" is tenant b's staff: every action below is refused and
changes nothing; the manager of b is refused the responsible person's signature."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from portal.core.db import Database
from portal.core.errors import NotAllowed
from portal.core.tenancy import Scope
from portal.identity.principal import Context, ContextKind, Principal
from portal.models.selfcheck import (
    Answer,
    Commitment,
    CommitmentStatus,
    Hazard,
    HazardStatus,
    SelfCheckAnswer,
    SelfCheckStatus,
    Severity,
)
from portal.models.tenants import MemberRole, Tenant
from portal.selfcheck import policies
from portal.selfcheck.commitments import services as commitments
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.policies import ActorKind, HazardActor
from portal.tenants import services as tenant_services
from tests.fixtures.factories import World
from tests.selfcheck.cycle import open_selfcheck

PERIOD = "2026-10"


async def _open_selfcheck(database: Database, tenant: Tenant) -> uuid.UUID:
    sc, _tenant = await open_selfcheck(database, tenant, PERIOD)
    return sc.id


async def test_staff_cannot_answer_or_submit_and_nothing_changes(database: Database, world: World) -> None:
    tenant, staff = world.tenants["b"], world.users["both"]
    sc_id = await _open_selfcheck(database, tenant)
    async with database.session(Scope.tenant(tenant.id)) as s:
        sc = await sc_services.load(s, sc_id)
        assert sc is not None
        first = sc.checklist.items[0].code
        with pytest.raises(NotAllowed) as refused:
            await sc_services.answer(s, sc, first, Answer.PASS, user_id=staff.id)
        assert "manager" in refused.value.message or "管理人" in refused.value.message
        t = await s.get(Tenant, tenant.id)
        assert t is not None
        with pytest.raises(NotAllowed):
            await sc_services.submit(s, sc, t, user_id=staff.id)
    async with database.session(Scope.tenant(tenant.id)) as s:
        sc = await sc_services.load(s, sc_id)
        assert sc is not None and sc.status is SelfCheckStatus.DUE
        answers = (
            await s.execute(
                select(func.count()).select_from(SelfCheckAnswer).where(SelfCheckAnswer.selfcheck_id == sc_id)
            )
        ).scalar_one()
        assert answers == 0
    # The manager of the same unit may: the rule is about the role, not the unit.
    async with database.session(Scope.tenant(tenant.id)) as s:
        sc = await sc_services.load(s, sc_id)
        assert sc is not None
        row = await sc_services.answer(
            s, sc, sc.checklist.items[0].code, Answer.PASS, user_id=world.users["manager_b"].id
        )
        assert row.answer is Answer.PASS


async def test_staff_cannot_prepare_the_commitment_or_change_the_board(
    database: Database, world: World
) -> None:
    tenant, staff = world.tenants["b"], world.users["both"]
    async with database.session(Scope.tenant(tenant.id)) as s:
        t = await s.get(Tenant, tenant.id)
        assert t is not None
        with pytest.raises(NotAllowed):
            await commitments.prepare(s, t, year=2026, prepared_by=staff.id)
        with pytest.raises(NotAllowed):
            await tenant_services.set_public_phone(s, t, staff.id, "13800138000")
    async with database.session(Scope.tenant(tenant.id)) as s:
        count = (
            await s.execute(
                select(func.count()).select_from(Commitment).where(Commitment.tenant_id == tenant.id)
            )
        ).scalar_one()
        t = await s.get(Tenant, tenant.id)
        assert count == 0 and t is not None and t.public_phone is None


async def test_only_the_responsible_person_signs_the_report(database: Database, world: World) -> None:
    tenant = world.tenants["a"]
    sc_id = await _open_selfcheck(database, tenant)
    async with database.session(Scope.tenant(tenant.id)) as s:
        sc = await sc_services.load(s, sc_id)
        t = await s.get(Tenant, tenant.id)
        assert sc is not None and t is not None
        for item in sc.checklist.items:
            await sc_services.answer(
                s, sc, item.code, Answer.NOT_APPLICABLE, user_id=world.users["manager_a"].id
            )
        await sc_services.submit(s, sc, t, user_id=world.users["manager_a"].id)
        assert sc.report_sha256 is not None
        with pytest.raises(sc_services.SelfCheckRefused) as refused:
            await sc_services.mark_signed(
                s, sc, user_id=world.users["manager_a"].id, evidence={}, signed_sha256=sc.report_sha256
            )
        assert refused.value.code == "only_responsible_signs"
        signed = await sc_services.mark_signed(
            s, sc, user_id=world.users["both"].id, evidence={}, signed_sha256=sc.report_sha256
        )
        assert signed.status is SelfCheckStatus.SIGNED
        # Signed once: nobody signs again, not even the responsible person.
        roles = await tenant_services.roles_of(s, tenant.id, world.users["both"].id)
        assert policies.why_not_sign_report(roles, signed) == "already_signed"


def _principal(kind: ContextKind, roles: frozenset[str] = frozenset()) -> Principal:
    return Principal(uuid.uuid4(), "x", None, Context(kind, "k", ""), None, roles=roles)


def test_who_may_verify_a_hazard_and_who_is_offered_the_button() -> None:
    waiting = Hazard(status=HazardStatus.AWAITING_VERIFICATION, severity=Severity.GENERAL)
    major = Hazard(status=HazardStatus.AWAITING_VERIFICATION, severity=Severity.MAJOR)
    open_ = Hazard(status=HazardStatus.OPEN, severity=Severity.GENERAL)
    staff = policies.hazard_actor(_principal(ContextKind.MEMBER, frozenset({"staff"})), [MemberRole.STAFF])
    manager = policies.hazard_actor(_principal(ContextKind.MEMBER), [MemberRole.MANAGER])
    warden = policies.hazard_actor(_principal(ContextKind.COMMITTEE))
    assert staff is not None and manager is not None and warden is not None
    assert warden == HazardActor(ActorKind.WARDEN, warden.user_id)
    assert policies.hazard_actor(_principal(ContextKind.INSURER)) is None
    assert not policies.may_verify_hazard(staff, waiting)
    assert policies.may_verify_hazard(manager, waiting) and policies.may_verify_hazard(warden, waiting)
    assert not policies.may_verify_hazard(manager, major) and policies.may_verify_hazard(warden, major)
    assert not policies.may_verify_hazard(warden, open_)  # nothing to verify yet
    assert policies.may_assign_hazard(manager, open_) and not policies.may_assign_hazard(staff, open_)


def test_commitment_rules() -> None:
    me = uuid.uuid4()
    prepared = Commitment(status=CommitmentStatus.PREPARED, responsible_id=me)
    signed = Commitment(status=CommitmentStatus.SIGNED, responsible_id=me)
    assert policies.may_prepare_commitment([MemberRole.MANAGER], prepared)
    assert not policies.may_prepare_commitment([MemberRole.STAFF], prepared)
    assert not policies.may_prepare_commitment([MemberRole.MANAGER], signed)
    assert policies.may_sign_commitment(me, [MemberRole.RESPONSIBLE], prepared)
    assert policies.why_not_sign_commitment(uuid.uuid4(), [MemberRole.RESPONSIBLE], prepared) == (
        "only_responsible_signs"
    )
    assert policies.why_not_sign_commitment(me, [MemberRole.MANAGER], prepared) == "only_responsible_signs"
    assert policies.why_not_sign_commitment(me, [MemberRole.RESPONSIBLE], signed) == "already_signed"
    assert policies.why_not_sign_commitment(me, [MemberRole.RESPONSIBLE], None) == "not_prepared"
