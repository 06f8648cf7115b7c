"""The discrete-event simulation that gives demo tenants their months of history (the story and the choices:
:mod:`portal.demo.history`): it plans what each unit's people do and when, as events that call the portal's
own services."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from portal.audit import services as audit
from portal.core import clock
from portal.demo.history_habits import (
    COMMON_FAILURES,
    FATES,
    GENERIC,
    NOTES,
    PATROL_FINDINGS,
    REJECTIONS,
    not_applicable,
)
from portal.demo.history_timeline import (
    Event,
    History,
    SignDue,
    Timeline,
    Unit,
    first_day,
    local,
    photo_bytes,
)
from portal.demo.phones import DemoPhones
from portal.models.evidence import OwnerType
from portal.models.identity import User
from portal.models.selfcheck import Answer, ChecklistItem, Hazard, PatrolRound, Severity
from portal.selfcheck.deadlines import signing_deadline
from portal.selfcheck.hazards import services as hz
from portal.selfcheck.hazards.services import Action
from portal.selfcheck.ledger import services as accountability
from portal.selfcheck.monthly import jobs
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.patrols import services as patrols
from portal.selfcheck.policies import ActorKind, HazardActor

REQUEST_ID = "demo-history"  # marks the audit entries of the replay (their ``at`` is when it ran)


class Simulation:
    def __init__(self, session: AsyncSession, history: History) -> None:
        from portal.config import get_settings
        from portal.evidence.services import Limits
        from portal.evidence.store import current_storage

        self.session = session
        self.history = history
        self.timeline = Timeline(history.end)
        self.storage = current_storage()  # the process's evidence storage, as the outbox handlers use
        self.limits = Limits.from_settings(get_settings())
        self.phones = DemoPhones(get_settings())
        self.units: list[Unit] = []
        # The session's identity map holds objects weakly: keeping the self-checks and hazards alive lets the
        # daily job's per-entry look-ups (accountability._fixed) hit it instead of the database every day.
        self.alive: list[object] = []

    # -- people ------------------------------------------------------------------------------------

    @contextmanager
    def _as(self, user: User | None) -> Iterator[None]:
        """Audit entries name the person acting (as the web layer does), marked as written by the replay."""
        if user is None:
            actor = audit.Actor(label="system", request_id=REQUEST_ID)
        else:
            actor = audit.Actor(
                label=f"{user.display_name} ({user.login})", user_id=user.id, request_id=REQUEST_ID
            )
        with audit.acting_as(actor):
            yield

    # -- photos ------------------------------------------------------------------------------------

    async def _photo(
        self, unit: Unit, owner: OwnerType, owner_id: uuid.UUID, user: User, at: datetime
    ) -> str:
        """Upload one photo the way a phone does: ask for a slot, upload to storage, complete."""
        from portal.evidence.services import Uploader, complete_upload, request_slot

        data = photo_bytes(unit.rng, at)
        client_id = uuid.uuid4()
        uploader = Uploader(user.id, user.display_name)
        with self._as(user):
            slot = await request_slot(
                self.session,
                self.storage,
                client_id=client_id,
                owner_type=owner,
                owner_id=owner_id,
                content_type="image/jpeg",
                size=len(data),
                filename=f"IMG_{at.astimezone(clock.zone()):%Y%m%d_%H%M%S}.jpg",
                uploader=uploader,
                limits=self.limits,
            )
            # What the browser does with the presigned POST: the bytes go straight to storage.
            await self.storage.put(slot.slot.key, data, "image/jpeg")
            evidence = await complete_upload(
                self.session, self.storage, client_id=client_id, uploader=uploader, limits=self.limits
            )
        self.history.counts["photos"] += 1
        return str(evidence.id)

    # -- hazards -----------------------------------------------------------------------------------

    def _step(
        self,
        unit: Unit,
        hazard_id: uuid.UUID,
        action: Action,
        who: User,
        actor: HazardActor,
        reason: str = "",
        photo: bool = False,
    ) -> Event:
        async def run(at: datetime) -> None:
            hazard = await self.session.get(Hazard, hazard_id)
            assert hazard is not None
            evidence = [await self._photo(unit, OwnerType.HAZARD, hazard.id, who, at)] if photo else []
            with self._as(who):
                await hz.transition(
                    self.session, hazard, action, actor, reason=reason, evidence_ids=evidence, now=at
                )
            self.history.counts[f"hazard.{action.value}"] += 1

        return run

    def _fate(self, unit: Unit, item: ChecklistItem) -> str:
        rng, habits = unit.rng, unit.habits
        if item.immediate_fix_possible and rng.random() < 0.35:
            return "spot"
        roll = rng.random()
        if item.severity is Severity.GENERAL:
            if roll < habits.stall_chance:
                return "stalled"
            if roll < habits.stall_chance + habits.abandon_chance:
                return "left_open"
        if roll < habits.stall_chance + habits.abandon_chance + habits.reject_chance:
            return "rejected"
        return "normal"

    def _plan_hazard(
        self, unit: Unit, hazard: Hazard, fate: str, opened: datetime, by: User | None = None
    ) -> None:
        """Schedule the rectification of one hazard. General hazards are verified by the manager or the
        responsible person; (suspected) major ones only from outside, by the tenant's grid warden."""
        if fate not in FATES:
            raise ValueError(f"unknown fate {fate!r} for {hazard.item_code}")
        rng, tl = unit.rng, self.timeline
        major = hazard.severity is Severity.MAJOR
        fix_text = NOTES.get(hazard.item_code or "", GENERIC)[1]
        hours = timedelta(hours=1)

        def verifier(fixer: User) -> tuple[User, HazardActor]:
            if major:
                warden = rng.choice(unit.wardens)
                return warden, HazardActor(ActorKind.WARDEN, warden.id)
            who = unit.verifier_for(fixer)
            return who, unit.member(who)

        if fate == "untouched":
            return
        if fate == "spot":  # 61号令 第31条: corrected on the spot; a major one still waits for the warden
            fixer = by or (unit.manager if major else unit.fixer())
            at = opened + timedelta(minutes=rng.randint(10, 90))
            tl.at(
                at,
                self._step(
                    unit, hazard.id, Action.FIX_ON_THE_SPOT, fixer, unit.member(fixer), fix_text, True
                ),
            )
            if major:
                who, actor = verifier(fixer)
                tl.at(
                    at + hours * rng.uniform(20, 70), self._step(unit, hazard.id, Action.VERIFY, who, actor)
                )
            return
        at = opened + hours * (rng.uniform(0.3, 4) if major else rng.uniform(1, 30))
        tl.at(at, self._step(unit, hazard.id, Action.START, unit.manager, unit.member(unit.manager)))
        if fate == "left_open":
            return
        if fate == "stalled":  # nobody gets round to it: the daily job flags it overdue, the ledger climbs
            at = hazard.deadline_at + timedelta(days=rng.uniform(3, 25))
        else:
            low, high = (1, 4) if major else unit.habits.fix_days
            at += timedelta(days=rng.uniform(low, high))
        rejections = {"rejected": 1, "reopened": 2}.get(fate, 0)
        fixer = unit.manager if major else unit.fixer()
        for n in range(rejections + 1):
            tl.at(
                at, self._step(unit, hazard.id, Action.SUBMIT_FIX, fixer, unit.member(fixer), fix_text, True)
            )
            who, actor = verifier(fixer)
            at += hours * rng.uniform(3, 60)
            if n < rejections:
                reason = REJECTIONS[(n + rng.randrange(len(REJECTIONS))) % len(REJECTIONS)]
                tl.at(at, self._step(unit, hazard.id, Action.REJECT, who, actor, reason))
                at += timedelta(days=rng.uniform(1, 6))
            else:
                tl.at(at, self._step(unit, hazard.id, Action.VERIFY, who, actor))

    # -- the monthly self-check --------------------------------------------------------------------

    def _findings(self, unit: Unit, items: list[ChecklistItem], months_back: int) -> dict[str, str | None]:
        rng, habits = unit.rng, unit.habits
        usable = [i for i in items if not not_applicable(unit.tenant, i.code)]
        found = dict(habits.forced.get(months_back, {}))
        if rng.random() < habits.failure_chance:
            count = min(habits.max_failures, 1 + int(rng.expovariate(1.6)))  # mostly one, now and then more
            pool = [i for i in usable if i.severity is Severity.GENERAL and i.code not in found]
            for _n in range(count):
                if not pool:
                    break
                pick = rng.choices(pool, weights=[COMMON_FAILURES.get(i.code, 1) for i in pool])[0]
                pool.remove(pick)
                found[pick.code] = None
        if rng.random() < habits.major_chance:
            majors = [i for i in usable if i.severity is Severity.MAJOR and i.code not in found]
            if majors:
                found[rng.choice(majors).code] = None
        return found

    def _sitting_day(self, unit: Unit, period: str, months_back: int) -> datetime:
        rng = unit.rng
        deadline = signing_deadline(period).astimezone(clock.zone()).date()
        if months_back in unit.habits.late:
            day = deadline + timedelta(days=rng.randint(2, 10))
        else:  # the last ten days of the month or the first days of the next, before the deadline
            first = first_day(period) + timedelta(days=19)
            day = first + timedelta(days=rng.randint(0, (deadline - first).days - 2))
        return local(day, rng.randint(9, 16), rng.randint(0, 59))

    def plan_month(self, unit: Unit, period: str, months_back: int) -> None:
        # The scheduler's monthly job makes the self-check on the 1st (jobs.open_periods → ensure_selfcheck).
        async def create(at: datetime) -> None:
            with self._as(None):
                self.alive.append(await sc_services.ensure_selfcheck(self.session, unit.tenant, period))

        self.timeline.at(local(first_day(period), 0, 5), create)
        if months_back in unit.habits.unsubmitted and unit.rng.random() < 0.5:
            return  # never even opened
        self.timeline.at(
            self._sitting_day(unit, period, months_back), self._sitting(unit, period, months_back)
        )

    def _sitting(self, unit: Unit, period: str, months_back: int) -> Event:
        async def run(start: datetime) -> None:
            rng, session = unit.rng, self.session
            found = await sc_services.ensure_selfcheck(session, unit.tenant, period)
            assert found is not None
            sc = await sc_services.load(session, found.id)
            assert sc is not None
            items = list(sc.checklist.items)
            failures = self._findings(unit, items, months_back)
            stop = len(items)
            if months_back in unit.habits.unsubmitted:
                stop = rng.randint(len(items) // 4, len(items) * 3 // 4)  # interrupted, never finished
            at = start
            with self._as(unit.manager):
                for item in items[:stop]:
                    at += timedelta(seconds=rng.randint(40, 150))
                    if at >= self.timeline.end:
                        return  # someone is answering right now
                    if item.code in failures:
                        value, note = Answer.FAIL, NOTES.get(item.code, GENERIC)[0]
                    elif not_applicable(unit.tenant, item.code):
                        value, note = Answer.NOT_APPLICABLE, ""
                    else:
                        value, note = Answer.PASS, ""
                    row = await sc_services.answer(
                        session, sc, item.code, value, user_id=unit.manager.id, note=note, now=at
                    )
                    self.history.counts["answers"] += 1
                    if value is Answer.FAIL and item.photo_required:  # the rules: no failure without a photo
                        at += timedelta(seconds=rng.randint(20, 60))
                        await self._photo(unit, OwnerType.SELFCHECK_ITEM, row.id, unit.manager, at)
                if stop < len(items):
                    return
                at += timedelta(minutes=rng.randint(2, 10))
                if at >= self.timeline.end:
                    return
                opened = await sc_services.submit(session, sc, unit.tenant, user_id=unit.manager.id, now=at)
            self.history.counts["selfchecks.submitted"] += 1
            for hazard_id in opened:
                hazard = await session.get(Hazard, hazard_id)
                assert hazard is not None and hazard.item_code is not None
                self.alive.append(hazard)
                self.history.counts[f"hazards.{hazard.severity.value}"] += 1
                item = next(i for i in items if i.code == hazard.item_code)
                fate = failures.get(item.code) or self._fate(unit, item)
                self._plan_hazard(unit, hazard, fate, at)
            # The responsible person signs within a day or two; on time if the report was.
            sign_at = at + timedelta(hours=rng.uniform(1, 40))
            if at < sc.deadline_at:
                sign_at = max(min(sign_at, sc.deadline_at - timedelta(hours=1)), at + timedelta(minutes=10))
            self.timeline.at(sign_at, self._signing_due(unit, sc.id, period))

        return run

    def plan_commitments(self, unit: Unit, start: datetime) -> None:
        """Each year the history touches, the unit's commitment is prepared and signed in its first days."""
        first_year = start.astimezone(clock.zone()).year
        for year in range(first_year, self.timeline.end.astimezone(clock.zone()).year + 1):
            day = max(start.astimezone(clock.zone()).date(), date(year, 1, 2)) + timedelta(days=1)
            at = local(day, 9, 30)  # not from unit.rng: the months planned after must not change

            async def run(when: datetime, year: int = year) -> None:
                await self.phones.commit_for_year(
                    self.session, unit.tenant, unit.manager, unit.responsible, year, when
                )
                self.history.counts["commitments.signed"] += 1

            self.timeline.at(at, run)

    def _signing_due(self, unit: Unit, selfcheck_id: uuid.UUID, period: str) -> Event:
        async def run(at: datetime) -> None:
            # The responsible person signs the frozen report with their phone's passkey, at this point of the
            # timeline: the daily jobs that run after it see it signed (on time when it was).
            await self.phones.sign_report(self.session, selfcheck_id, unit.tenant, unit.responsible, at)
            self.history.signed.append(SignDue(selfcheck_id, unit.tenant.id, period, unit.responsible.id, at))
            self.history.counts["selfchecks.signed"] += 1

        return run

    # -- patrols -----------------------------------------------------------------------------------

    def plan_patrols(self, unit: Unit, first: date, last: date) -> None:
        rng, habits = unit.rng, unit.habits
        day = first
        while day <= last:
            slots = patrols.slots(unit.tenant, day)
            if slots and rng.random() < habits.patrol_miss:
                slots.remove(rng.choice(slots))  # a round forgotten: the day counts as missed
            for slot in slots:
                if slot.round is PatrolRound.DAILY:
                    at = local(day, rng.randint(8, 17), rng.randint(0, 59))
                else:
                    at = slot.start.astimezone(UTC) + timedelta(minutes=rng.randint(5, 100))
                    at = min(at, slot.end.astimezone(UTC) - timedelta(minutes=1))
                finding = rng.choice(PATROL_FINDINGS) if rng.random() < habits.patrol_finding else None
                who = unit.fixer()  # staff walk the rounds, now and then the manager
                self.timeline.at(at, self._patrol(unit, slot.round, who, finding))
            day += timedelta(days=1)

    def _patrol(self, unit: Unit, round_: PatrolRound, who: User, finding: str | None) -> Event:
        async def run(at: datetime) -> None:
            results = {}
            if finding is not None:
                results[finding] = patrols.ItemResult(Answer.FAIL, NOTES.get(finding, GENERIC)[0])
            with self._as(who):
                _patrol, opened = await patrols.log_patrol(
                    self.session, unit.tenant, round_, results, user_id=who.id, now=at
                )
            self.history.counts["patrols"] += 1
            for hazard_id in opened:
                hazard = await self.session.get(Hazard, hazard_id)
                assert hazard is not None
                self.alive.append(hazard)
                self.history.counts[f"hazards.{hazard.severity.value}"] += 1
                self._plan_hazard(unit, hazard, "spot", at, by=who)  # 61号令 第25条: corrected on the spot

        return run

    # -- the scheduler's daily jobs ----------------------------------------------------------------

    def plan_daily_jobs(self, first: date, last: date) -> None:
        tenant_ids = [u.tenant.id for u in self.units]

        async def daily(at: datetime) -> None:
            with self._as(None):
                await jobs.flag_overdue(self.session, at)
                # Only the history tenants: the others were onboarded today and owe nothing from before.
                await accountability.run(self.session, at, tenant_ids=tenant_ids)
            self.history.counts["daily_jobs"] += 1

        day = first
        while day <= last:
            self.timeline.at(local(day, 0, 30), daily)
            day += timedelta(days=1)
