"""The demo city's months of history (portal/demo/history.py), on both databases.

``portal demo`` is seeded once per module into a database of its own: the history runs the scheduler's daily
jobs, which look at every tenant, so it must not share the session database with other tests' tenants. The
history is relative to today, so every expectation is computed from the seeding moment, never a fixed date.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from portal.config import Settings
from portal.core import clock
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo import history as history_mod
from portal.demo import history_habits
from portal.demo.history import HISTORY, PERIODS, History, base_code
from portal.demo.seed import seed_demo
from portal.evidence.store import storage_from_settings, use_storage
from portal.models.audit import AuditEntry
from portal.models.evidence import Evidence, OwnerType
from portal.models.grid import WardenAssignment
from portal.models.notify import Notification
from portal.models.selfcheck import (
    AccountabilityEntry,
    Answer,
    Checklist,
    ChecklistItem,
    Commitment,
    Hazard,
    HazardEvent,
    HazardStatus,
    LadderStep,
    LedgerKind,
    Patrol,
    SelfCheck,
    SelfCheckAnswer,
    SelfCheckStatus,
    Severity,
)
from portal.models.tenants import MemberRole, Membership, Tenant
from portal.selfcheck.commitments import services as commitments
from portal.selfcheck.deadlines import period_of, previous_period
from portal.selfcheck.hazards.services import TRANSITIONS, Action
from portal.selfcheck.patrols import services as patrols
from portal.selfcheck.reports import services as reports
from tests.fixtures.databases import fresh_database

SUBMITTED = (SelfCheckStatus.SUBMITTED, SelfCheckStatus.SIGNED)


@pytest.fixture(scope="module")
def own_settings(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh, migrated database for this module alone (see the module docstring)."""
    with fresh_database(db_kind, tmp_path_factory.mktemp("demo-history"), "demo_history") as settings:
        yield settings


@dataclass
class Seeded:
    db: Database
    message: str
    seconds: float
    history: History
    objects: Path

    @property
    def now(self) -> datetime:
        return self.history.end


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(own_settings: Settings) -> AsyncIterator[Seeded]:
    """``portal demo`` as the command runs it, keeping what the history step returned."""
    kept: list[History] = []
    real = history_mod.build_history

    async def keeping(*args: Any, **kwargs: Any) -> History:
        kept.append(await real(*args, **kwargs))
        return kept[-1]

    use_storage(storage_from_settings(own_settings))  # photos go to this module's directory
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(history_mod, "build_history", keeping)
            started = time.perf_counter()
            message = await seed_demo(own_settings)
            seconds = time.perf_counter() - started
    finally:
        use_storage(None)
    print(f"\nportal demo with history: {seconds:.1f} s ({own_settings.database_url.split(':')[0]})")
    db = Database(own_settings)
    objects = Path(own_settings.storage_url.removeprefix("file://"))
    yield Seeded(db, message, seconds, kept[0], objects)
    await db.dispose()


def _periods(now: datetime) -> list[str]:
    """periods[k]: the period k months back (0: this month)."""
    out = [period_of(now)]
    for _n in range(PERIODS):
        out.append(previous_period(out[-1]))
    return out


def _last_daily_run(now: datetime) -> datetime:
    """When the replay last ran the scheduler's daily jobs (00:30 Asia/Shanghai)."""
    local = now.astimezone(clock.zone())
    run = local.replace(hour=0, minute=30, second=0, microsecond=0)
    return (run if run <= local else run - timedelta(days=1)).astimezone(UTC)


async def _tenants(seeded: Seeded) -> dict[str, Tenant]:
    async with seeded.db.session(Scope.system("test")) as s:
        return {t.code: t for t in (await s.execute(select(Tenant))).scalars()}


async def test_the_demo_is_seeded_with_history_for_the_chosen_tenants(seeded: Seeded) -> None:
    assert seeded.message.startswith("seeded 示例市")
    assert sorted(base_code(c) for c in seeded.history.tenants) == sorted(HISTORY)
    tenants = await _tenants(seeded)
    start = seeded.history.start
    for code, tenant in tenants.items():
        if code in HISTORY:  # onboarded before their history, so patrol duty and the patrol log cover it
            assert tenant.created_at < start
        else:
            assert tenant.created_at > seeded.now - timedelta(hours=1)


async def test_one_selfcheck_per_period_and_states_as_the_habits_say(seeded: Seeded) -> None:
    periods = _periods(seeded.now)
    flagged_by = _last_daily_run(seeded.now)
    tenants = await _tenants(seeded)
    async with seeded.db.session(Scope.system("test")) as s:
        for code, tenant in tenants.items():
            rows = (
                (await s.execute(select(SelfCheck).where(SelfCheck.tenant_id == tenant.id))).scalars().all()
            )
            mine = sorted(sc.period for sc in rows)
            if code not in HISTORY:  # seed_cycle's one, untouched: joined today, last month is not due
                assert mine == [periods[0]]
                assert all(sc.status is SelfCheckStatus.DUE for sc in rows)
                continue
            assert mine == sorted(periods)  # exactly one per period, six past ones and this month's
            habits = HISTORY[code]
            items = {
                i.code: i
                for i in (
                    await s.execute(
                        select(ChecklistItem).where(ChecklistItem.checklist_id == rows[0].checklist_id)
                    )
                ).scalars()
            }
            for sc in rows:
                back = periods.index(sc.period)
                answers = (
                    (await s.execute(select(SelfCheckAnswer).where(SelfCheckAnswer.selfcheck_id == sc.id)))
                    .scalars()
                    .all()
                )
                if back in habits.unsubmitted:
                    assert sc.status in (SelfCheckStatus.DUE, SelfCheckStatus.IN_PROGRESS)
                    assert len(answers) < len(items)
                elif back in habits.late:
                    assert sc.status in SUBMITTED
                    assert sc.submitted_at is not None and sc.submitted_at > sc.deadline_at
                elif sc.deadline_at < flagged_by:  # a past month, done in time
                    assert sc.status in SUBMITTED, (code, sc.period)
                    assert sc.submitted_at is not None and sc.submitted_at <= sc.deadline_at
                if sc.deadline_at < flagged_by and sc.status is not SelfCheckStatus.SIGNED:
                    assert sc.overdue_at is not None  # the daily job flagged it (unsigned past its deadline)
                if sc.status in SUBMITTED:
                    assert sc.submitted_at is not None and sc.report_sha256
                    assert sorted(a.item_code for a in answers) == sorted(items)
                for a in answers:
                    assert a.answered_at <= seeded.now
                    assert period_of(a.answered_at) in (sc.period, periods[back - 1] if back else sc.period)
                    if a.answer is Answer.FAIL:
                        assert a.note
                        if items[a.item_code].photo_required:
                            photo = await s.execute(
                                select(Evidence.id).where(
                                    Evidence.owner_type == OwnerType.SELFCHECK_ITEM, Evidence.owner_id == a.id
                                )
                            )
                            assert photo.first() is not None
                for a in answers:  # the same items are "not applicable" every month, from the premises
                    if history_habits.not_applicable(tenant, a.item_code):
                        assert a.answer is Answer.NOT_APPLICABLE
                if sc.status in SUBMITTED:  # believable: most items pass, a few fail
                    failed = sum(a.answer is Answer.FAIL for a in answers)
                    assert failed <= habits.max_failures + len(habits.forced.get(back, {})) + 1  # + a major
                    assert sum(a.answer is Answer.PASS for a in answers) >= 0.6 * len(answers)


async def test_every_hazard_has_an_event_for_every_transition(seeded: Seeded) -> None:
    tenants = await _tenants(seeded)
    ids = [tenants[c].id for c in HISTORY]
    allowed = {(before, action.value, after) for (before, action), after in TRANSITIONS.items()}
    allowed.add(
        (HazardStatus.OPEN, Action.FIX_ON_THE_SPOT.value, HazardStatus.AWAITING_VERIFICATION)
    )  # major
    async with seeded.db.session(Scope.system("test")) as s:
        hazards = (await s.execute(select(Hazard).where(Hazard.tenant_id.in_(ids)))).scalars().all()
        assert len(hazards) >= 20
        seen = {h.status for h in hazards}
        assert HazardStatus.CLOSED in seen and seen - {HazardStatus.CLOSED}  # most closed, a few still open
        for h in hazards:
            assert h.status in set(HazardStatus)
            events = (
                (
                    await s.execute(
                        select(HazardEvent).where(HazardEvent.hazard_id == h.id).order_by(HazardEvent.at)
                    )
                )
                .scalars()
                .all()
            )
            first, *rest = events
            assert (first.action, first.from_status, first.to_status) == ("open", None, HazardStatus.OPEN)
            assert first.at == h.opened_at
            state = HazardStatus.OPEN
            for e in rest:
                assert e.from_status == state, (h.item_code, [x.action for x in events])
                assert (e.from_status, e.action, e.to_status) in allowed
                assert e.at <= seeded.now
                if e.action in (Action.SUBMIT_FIX.value, Action.FIX_ON_THE_SPOT.value):
                    assert e.evidence_ids  # a fix is shown with a photo, and the photo is the hazard's
                    for evidence_id in e.evidence_ids:
                        photo = await s.get(Evidence, uuid.UUID(evidence_id))
                        assert photo is not None and photo.owner_id == h.id
                if e.action == Action.REJECT.value:
                    assert e.reason
                state = e.to_status
            assert state is h.status
            assert h.rejections == sum(e.action == Action.REJECT.value for e in events)
            if h.status is HazardStatus.CLOSED:
                assert h.closed_at == events[-1].at
            else:
                assert h.closed_at is None


async def test_major_hazards_close_only_on_the_grid_wardens_word(seeded: Seeded) -> None:
    tenants = await _tenants(seeded)
    closed_majors = 0
    async with seeded.db.session(Scope.system("test")) as s:
        for code in HISTORY:
            tenant = tenants[code]
            wardens = set(
                (
                    await s.execute(
                        select(WardenAssignment.user_id).where(WardenAssignment.grid_id == tenant.grid_id)
                    )
                ).scalars()
            )
            verifiers = set(
                (
                    await s.execute(
                        select(Membership.user_id).where(
                            Membership.tenant_id == tenant.id,
                            Membership.role.in_([MemberRole.MANAGER, MemberRole.RESPONSIBLE]),
                        )
                    )
                ).scalars()
            )
            rows = await s.execute(
                select(Hazard, HazardEvent)
                .join(HazardEvent, HazardEvent.hazard_id == Hazard.id)
                .where(Hazard.tenant_id == tenant.id, HazardEvent.action.in_(["verify", "reject"]))
            )
            for hazard, event in rows.all():
                if hazard.severity is Severity.MAJOR:
                    assert event.actor_kind in ("warden", "regulator")
                    assert event.actor_user_id in wardens
                    closed_majors += event.to_status is HazardStatus.CLOSED
                else:
                    assert event.actor_kind == "member" and event.actor_user_id in verifiers
    assert closed_majors >= 2  # the factory's dormitory, the petrol station's pump (HISTORY stories)


async def test_the_ledger_holds_the_lapses_of_the_tenants_that_fell_behind(seeded: Seeded) -> None:
    periods = _periods(seeded.now)
    flagged_by = _last_daily_run(seeded.now)
    tenants = await _tenants(seeded)
    async with seeded.db.session(Scope.system("test")) as s:

        async def entries(code: str, kind: LedgerKind) -> dict[str, AccountabilityEntry]:
            rows = await s.execute(
                select(AccountabilityEntry).where(
                    AccountabilityEntry.tenant_id == tenants[code].id, AccountabilityEntry.kind == kind
                )
            )
            return {e.subject_id: e for e in rows.scalars()}

        behind = 0
        for code, habits in HISTORY.items():
            overdue = await entries(code, LedgerKind.OVERDUE_SELFCHECK)
            for back in (*habits.late, *habits.unsubmitted):
                sc = (
                    await s.execute(
                        select(SelfCheck).where(
                            SelfCheck.tenant_id == tenants[code].id, SelfCheck.period == periods[back]
                        )
                    )
                ).scalar_one()
                if sc.deadline_at < flagged_by:
                    assert str(sc.id) in overdue, (code, sc.period)
                    behind += 1
        assert behind >= 3
        # The high-rise estate's fire-pump fault: open, past its deadline, climbed to the regulator.
        pump = (
            await s.execute(
                select(Hazard).where(Hazard.tenant_id == tenants["T39"].id, Hazard.item_code == "COMM-M-14")
            )
        ).scalar_one()
        assert pump.severity is Severity.MAJOR and pump.status is not HazardStatus.CLOSED
        assert pump.overdue_at is not None
        entry = (await entries("T39", LedgerKind.OVERDUE_HAZARD))[str(pump.id)]
        assert entry.resolved_at is None and entry.step is LadderStep.REGULATOR
        assert entry.escalated_at is not None
        # A rectification rejected twice: the reopened-hazard lapse (resolved once it finally closed).
        assert await entries("T34", LedgerKind.REOPENED_HAZARD)
        # Every hazard flagged overdue has its entry; entries of closed hazards are resolved.
        for code in HISTORY:
            found = await entries(code, LedgerKind.OVERDUE_HAZARD)
            late = await s.execute(
                select(Hazard).where(Hazard.tenant_id == tenants[code].id, Hazard.overdue_at.is_not(None))
            )
            for hazard in late.scalars():
                assert str(hazard.id) in found
                if hazard.closed_at is not None and hazard.closed_at < flagged_by:
                    assert found[str(hazard.id)].resolved_at is not None
        notified = (await s.execute(select(func.count()).select_from(Notification))).scalar_one()
        assert notified > 0


async def test_key_units_patrol_daily_and_missed_days_are_on_the_ledger(seeded: Seeded) -> None:
    tenants = await _tenants(seeded)
    yesterday = patrols.local_day(_last_daily_run(seeded.now)) - timedelta(days=1)
    key_units = [c for c in HISTORY if patrols.patrols_required(tenants[c])]
    assert key_units
    total_missed = 0
    async with seeded.db.session(Scope.system("test")) as s:
        for code in key_units:
            tenant = tenants[code]
            first = patrols.local_day(seeded.history.start)
            missed = await patrols.missed_days(s, tenant, first, yesterday)
            days = (yesterday - first).days + 1
            assert len(missed) <= days * 0.12  # a few missed days, not many
            total_missed += len(missed)
            rows = await s.execute(
                select(AccountabilityEntry.subject_id).where(
                    AccountabilityEntry.tenant_id == tenant.id,
                    AccountabilityEntry.kind == LedgerKind.MISSED_PATROL,
                )
            )
            assert sorted(rows.scalars()) == [d.isoformat() for d in missed]
        assert total_missed > 0
        others = [t.id for c, t in tenants.items() if c not in HISTORY]
        assert (
            await s.execute(select(func.count()).select_from(Patrol).where(Patrol.tenant_id.in_(others)))
        ).scalar_one() == 0


async def test_reports_are_signed_with_passkeys_by_their_responsible_person(seeded: Seeded) -> None:
    """Every submitted report but the freshest is signed with the responsible person's passkey, at the moment
    the history says, and the signature verifies against the report as stored."""
    due = {d.selfcheck_id: d for d in seeded.history.signed}
    assert len(due) == len(seeded.history.signed) > 0
    async with seeded.db.session(Scope.system("test")) as s:
        submitted = (
            (
                await s.execute(
                    select(SelfCheck).where(
                        SelfCheck.status.in_(SUBMITTED),
                        SelfCheck.tenant_id.in_({d.tenant_id for d in due.values()}),
                    )
                )
            )
            .scalars()
            .all()
        )
        assert set(due) <= {sc.id for sc in submitted}
        for sc in submitted:
            if sc.id not in due:  # only the freshest reports are still waiting for their signature
                assert sc.submitted_at is not None and sc.submitted_at > seeded.now - timedelta(hours=41)
                continue
            sign = due[sc.id]
            assert sc.submitted_at is not None and sc.submitted_at < sign.at < seeded.now
            if sc.submitted_at <= sc.deadline_at:
                assert sign.at <= sc.deadline_at  # on time stays on time
            role = await s.execute(
                select(Membership.role).where(
                    Membership.tenant_id == sc.tenant_id, Membership.user_id == sign.user_id
                )
            )
            assert MemberRole.RESPONSIBLE in set(role.scalars())
            assert sc.status is SelfCheckStatus.SIGNED and sc.signed_at == sign.at
            if sc.submitted_at <= sc.deadline_at:
                assert sc.overdue_at is None  # signed on time: never flagged, never on the ledger
            check = await reports.verify_report(s, sc.id)
            assert check is not None and check.verification is not None and check.verification.ok
        # The year's commitment of every history tenant is signed and verifies.
        for tenant_id in {d.tenant_id for d in due.values()}:
            signed = (
                (await s.execute(select(Commitment).where(Commitment.tenant_id == tenant_id))).scalars().all()
            )
            assert signed  # one per year the history touches
            for c in signed:
                assert (await commitments.verify_commitment(s, c)).verification.ok  # type: ignore[union-attr]


async def test_the_public_board_shows_the_key_each_commitment_was_signed_with(
    seeded: Seeded, own_settings: Settings
) -> None:
    """The demo's signatures are bound to registered passkeys: the board of every history tenant says the
    commitment's signature is valid and shows the fingerprint of the key it was made with."""
    import hashlib
    import html

    from litestar.testing import AsyncTestClient

    from portal.app import create_app
    from portal.core import i18n
    from portal.models.identity import Passkey
    from portal.models.selfcheck import DocumentType, Signature

    tenant_ids = {d.tenant_id for d in seeded.history.signed}
    async with seeded.db.session(Scope.system("test")) as s:
        keys = {
            tenant_id: key
            for tenant_id, key in (
                await s.execute(
                    select(Signature.tenant_id, Passkey.public_key)
                    .join(Passkey, Passkey.id == Signature.passkey_id)
                    .join(Commitment, Commitment.id == Signature.document_id)
                    .where(
                        Signature.document_type == DocumentType.COMMITMENT,
                        Signature.tenant_id.in_(tenant_ids),
                        Commitment.year == seeded.now.astimezone(clock.zone()).year,
                    )
                )
            ).all()
        }
    assert set(keys) == tenant_ids
    valid = i18n.translations("zh_CN").gettext("signature valid")
    app = create_app(own_settings.model_copy(update={"demo": True}))
    async with AsyncTestClient(app=app, base_url="http://localhost.local") as client:
        for tenant_id, key in keys.items():
            board = html.unescape((await client.get(f"/board/{tenant_id}")).text)
            digest = hashlib.sha256(key).hexdigest()
            assert valid in board and " ".join(digest[i : i + 4] for i in range(0, 64, 4)) in board


async def test_running_the_demo_again_changes_nothing(seeded: Seeded, own_settings: Settings) -> None:
    tables = [
        Tenant, SelfCheck, SelfCheckAnswer, Hazard, HazardEvent, Patrol, AccountabilityEntry,
        Evidence, Notification, AuditEntry, Checklist,
    ]  # fmt: skip

    async def counts() -> dict[str, int]:
        async with seeded.db.session(Scope.system("test")) as s:
            return {
                t.__tablename__: (await s.execute(select(func.count()).select_from(t))).scalar_one()
                for t in tables
            }

    before = await counts()
    assert before["patrol"] > 0 and before["evidence"] > 0
    use_storage(storage_from_settings(own_settings))
    try:
        assert "already present" in await seed_demo(own_settings, if_empty=True)
        assert "refusing" in await seed_demo(own_settings)
    finally:
        use_storage(None)
    assert await counts() == before


async def test_photos_are_stored_and_carry_the_moment_of_the_story(seeded: Seeded) -> None:
    from PIL import Image

    from portal.models.evidence import StoredObject

    async with seeded.db.session(Scope.system("test")) as s:
        stored = (await s.execute(select(func.count()).select_from(StoredObject))).scalar_one()
    kept = [p for p in (seeded.objects / "objects").rglob("*") if p.is_file()]  # not the meta/ sidecars
    files = sorted(p for p in kept if p.parent.name == "objects")  # evidence/<tenant>/objects/<sha256>
    assert len(files) == stored > 0  # every upload completed
    assert not [p for p in kept if p.parent.name == "uploads"]  # and no staging copy left behind
    with Image.open(files[0]) as im:
        taken = im.getexif().get_ifd(0x8769).get(0x9003)  # DateTimeOriginal: when the story took it
    assert taken and datetime.strptime(taken, "%Y:%m:%d %H:%M:%S").replace(tzinfo=clock.zone()) < seeded.now


async def test_the_inbox_holds_the_story_s_moments_and_only_this_week_is_new(seeded: Seeded) -> None:
    """Messages the replay produced carry the moment of their event; those older than a few days were
    read long ago, so a fresh demo's inbox does not announce months-old events as new."""
    from portal.models.notify import Notification

    async with seeded.db.session(Scope.system("test")) as s:
        rows = (await s.execute(select(Notification.created_at, Notification.read_at))).all()
    assert rows
    assert all(created <= seeded.now for created, _read in rows)
    assert any(created < seeded.now - timedelta(days=60) for created, _read in rows)  # months of history
    stale_unread = [c for c, read in rows if read is None and c < seeded.now - history_mod.STILL_NEW]
    assert stale_unread == []


async def test_seeding_leaves_nothing_for_the_server_to_catch_up(seeded: Seeded) -> None:
    """``portal demo`` runs its own backlog (e-mails, thumbnails): ``portal serve`` starts quiet."""
    from portal.core import outbox
    from portal.core.outbox import OutboxMessage
    from portal.models.evidence import Processing, StoredObject

    async with seeded.db.session(Scope.system("test")) as s:
        pending = (
            await s.execute(select(func.count()).where(OutboxMessage.status == outbox.PENDING))
        ).scalar_one()
        unprocessed = (
            await s.execute(select(func.count()).where(StoredObject.processing == Processing.PENDING))
        ).scalar_one()
    assert (pending, unprocessed) == (0, 0)
