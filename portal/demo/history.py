"""Months of believable history for 示例市, produced by the portal's own services (a ``portal demo`` step).

The issue asks for history "produced by these services (not inserted rows)". So this is a small
discrete-event simulation: it plans, per tenant and month, what the tenant's people do and when — answer the
monthly self-check item by item, submit it, rectify what failed (with a photo, as the rules demand), have it
verified, patrol — and replays the plan in time order, calling the same services the pages call, each
with ``now=`` set to the simulated moment. The scheduler's daily jobs (``jobs.flag_overdue`` and
``accountability.run``) run at 00:30 of every simulated day, so overdue flags, the ledger and its
escalations are what the real rules make of the history; nothing here writes them.

Choices worth knowing:

* **Who has history** (:data:`HISTORY`): eight tenants over every district, category and insurer — a few
  keep up, a few fall behind. Time is the limit (``make run`` and the tests seed the demo): every patrol round
  is a service call (~5 ms on SQLite) and the key units with timed rounds (hospital, mall, hotel, KTV,
  library...) log 5–13 rounds a day, seconds per tenant-month, so the two key units here patrol once a day;
  and the daily jobs' cost grows with the open ledger entries (see *Signing*). The other tenants stay as
  ``seed_cycle`` leaves them: onboarded today, with this month's and last month's self-check open.
* **Onboarding date.** Patrol duty, the patrol log and the missed-patrol lapse all start at the tenant's
  onboarding (``Tenant.created_at``), and ``register_tenant`` has no ``now=``. A history tenant is therefore
  back-dated to the day before its history starts (:func:`_onboarded_before`) — the one write here that is
  not a service call, and no rule of the cycle is involved.
* **Signing**: the responsible person signs each submitted report with a passkey on their (software) phone
  (``phones.py``) — a real WebAuthn assertion over the report's hash, verified by the same code as a
  browser's — at a moment of the timeline (:meth:`_Simulation._signing_due`), so the daily jobs that run
  afterwards see it signed on time when it was. Each history unit's year commitment is prepared and signed
  at the start of the history.
* **Reproducible**: one ``random.Random`` per tenant, seeded with :data:`SEED` and the tenant's code; the same
  day gives the same city.
"""

from __future__ import annotations

import heapq
import io
import itertools
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import structlog
import structlog.testing
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import portal.selfcheck.evidence_owners  # noqa: F401  (hazards and answers as owners of photos)
from portal.core.audit import services as audit
from portal.demo.phones import DemoPhones
from portal.evidence.models import OwnerType
from portal.grid.models import WardenAssignment
from portal.selfcheck import accountability, jobs, patrols
from portal.selfcheck import hazards as hz
from portal.selfcheck import services as sc_services
from portal.selfcheck.hazards import Action, ActorKind, HazardActor
from portal.selfcheck.models import Answer, ChecklistItem, Hazard, PatrolRound
from portal.selfcheck.policy import SHANGHAI, period_of, previous_period, signing_deadline
from portal.selfcheck.schemas import Severity
from portal.tenants.models import Tenant, User

if TYPE_CHECKING:
    from portal.demo.seed import DemoCity

SEED = 2611
PERIODS = 6  # past periods with history, before the current month
REQUEST_ID = "demo-history"  # marks the audit entries of the replay (their ``at`` is when it ran)
log = structlog.get_logger("portal.demo")


# -- how each history tenant keeps up --------------------------------------------------------------


@dataclass(frozen=True)
class Habits:
    """What drives a tenant's random choices. Months are counted back from now: 1 = last month, 0 = this one.

    ``forced`` adds findings to a month, ``{months_back: {item_code: fate}}`` (fates: :data:`FATES`; ``None``
    lets chance decide); they carry the stories a regulator should find (a major hazard left open...)."""

    failure_chance: float = 0.3  # that a month's self-check finds anything at all
    max_failures: int = 1
    major_chance: float = 0.03  # that a month also finds a (suspected) major hazard
    late: tuple[int, ...] = ()  # months submitted after the signing deadline
    unsubmitted: tuple[int, ...] = ()  # months never finished (overdue, the ledger climbs)
    fix_days: tuple[int, int] = (2, 12)  # a general rectification takes this many days
    stall_chance: float = 0.03  # that a general hazard lies untouched past its deadline
    abandon_chance: float = 0.0  # that a rectification is started and then left (still open now)
    reject_chance: float = 0.08  # that the verifier sends a rectification back
    patrol_miss: float = 0.02  # that a patrol day is incomplete
    patrol_finding: float = 0.02  # that a patrol finds something (fixed on the spot)
    forced: dict[int, dict[str, str | None]] = field(default_factory=dict)


DILIGENT = Habits(failure_chance=0.25, major_chance=0.02)
AVERAGE = Habits(failure_chance=0.45, max_failures=2, stall_chance=0.08, abandon_chance=0.04)
STRUGGLING = Habits(
    failure_chance=0.8,
    max_failures=3,
    major_chance=0.06,
    fix_days=(6, 25),
    stall_chance=0.3,
    abandon_chance=0.15,
    reject_chance=0.15,
    patrol_miss=0.1,
)


def _like(base: Habits, **changes: Any) -> Habits:
    return replace(base, **changes)


HISTORY: dict[str, Habits] = {
    # key units that patrol once a day (see the module docstring for why only these)
    # garment factory: workers found sleeping in the finished-goods store (三合一); the warden rejects once
    "T08": _like(AVERAGE, patrol_miss=0.04, forced={4: {"KEY-M-33": "rejected"}}),
    # petrol station: fire-pump control left on manual, set back at once, verified by the warden
    "T09": _like(DILIGENT, forced={6: {"KEY-M-19": "spot"}}),
    # general units
    "T13": _like(STRUGGLING, late=(5, 2), forced={4: {"GEN-M-14": "stalled"}}),  # machine workshop
    "T16": _like(AVERAGE, forced={3: {"GEN-M-06": "rejected"}}),
    # small places
    "T22": _like(DILIGENT, failure_chance=0.1),  # the clean noodle house of risk-grade.md
    "T25": _like(STRUGGLING, late=(4,), unsubmitted=(1,)),  # mini KTV: last month never finished
    # communities
    # old estate: e-bikes charged in the stairwells, month after month; once rejected twice (reopened)
    "T34": _like(
        AVERAGE,
        forced={5: {"COMM-M-07": None}, 3: {"COMM-M-07": "reopened"}, 1: {"COMM-M-07": None}},
    ),
    # high-rise estate: the fire-pump fault of risk-grade.md, a major hazard still open past its deadline
    # (two months back: last month's self-check may not be done yet early in a month)
    "T39": _like(DILIGENT, forced={2: {"COMM-M-14": "left_open"}}),
}

FATES = ("spot", "normal", "rejected", "reopened", "stalled", "left_open", "untouched")


def base_code(code: str) -> str:
    """The demo code of a tenant: tests seed renamed copies of the city (``T01-3fa2b1``)."""
    return code.split("-", 1)[0]


# -- what people write -----------------------------------------------------------------------------

# Findings and fixes as a unit's people would type them (user content, so Chinese like the rest of the city).
NOTES: dict[str, tuple[str, str]] = {
    "KEY-M-05": ("本半年度灭火和疏散演练尚未组织。", "已组织全员疏散演练，留存照片和签到记录。"),
    "KEY-M-09": ("维保单位本月维保记录未签字。", "已督促维保单位补签，约定每月按时提交记录。"),
    "KEY-M-11": ("三楼东侧疏散楼梯间堆放装修剩余的纸箱和板材。", "已清理楼梯间堆放物，张贴禁止堆放提示。"),
    "KEY-M-13": (
        "地下一层两处疏散指示标志不亮，一处被广告架遮挡。",
        "更换损坏的标志灯，移开广告架，复测正常。",
    ),
    "KEY-M-14": (
        "二层走道两盏应急照明灯按试验按钮后不亮，电池老化。",
        "更换应急照明灯电池，逐一试验均能点亮。",
    ),
    "KEY-M-15": ("B座楼梯间防火门被木楔固定在开启位置。", "已撤除木楔，修复闭门器，防火门保持常闭。"),
    "KEY-M-16": ("东侧消防车登高场地停放了两辆员工私家车。", "车辆已挪走，加装禁停标识，保安按班次巡看。"),
    "KEY-M-19": (
        "消防水泵控制柜处于手动位置，值班人员称为防止误启动。",
        "已恢复自动状态，值班人员重新培训，每班核对。",
    ),
    "KEY-M-21": (
        "五楼两个室内消火栓箱缺水枪，一个箱门被货架挡住。",
        "补齐水枪水带，移开货架，箱门可正常开启。",
    ),
    "KEY-M-22": ("北门室外消火栓被绿化围挡圈占，标识褪色。", "拆除围挡，重新喷涂标识，周边保持净空。"),
    "KEY-M-24": (
        "抽查12具灭火器，3具压力指针在红区，2具超过维修期限。",
        "已送修并更换5具灭火器，补填检查卡。",
    ),
    "KEY-M-27": (
        "后勤仓库插排串接使用，配电箱旁堆放纸箱。",
        "拆除串接插排改为固定插座，清理配电箱周边可燃物。",
    ),
    "KEY-M-31": ("厨房排油烟罩油污较厚，清洗记录缺两个月。", "委托专业公司清洗油烟罩和烟道，补建清洗台账。"),
    "KEY-M-33": (
        "成品仓库二层角落有员工搭建的临时床铺，4名员工夜间住宿。",
        "已拆除床铺，员工搬入厂外宿舍，仓库夜间上锁巡查。",
    ),
    "KEY-M-36": ("员工通道内有两辆电动自行车停放充电。", "车辆已移至室外集中充电棚，通道张贴禁停禁充告示。"),
    "KEY-M-38": ("部分灭火器箱和消火栓的使用说明标识脱落。", "已补贴使用说明和消防安全标志。"),
    "GEN-M-03": ("两名新入职员工未参加岗前消防培训。", "已补训并签到，培训记录存档。"),
    "GEN-M-06": (
        "仓库通道堆放待发货物，疏散通道宽度不足1米。",
        "货物已归位，地面划定通道黄线，班组长每日检查。",
    ),
    "GEN-M-07": ("一楼安全出口标志灯不亮。", "更换标志灯，断电测试正常。"),
    "GEN-M-09": ("楼梯间防火门闭门器损坏，门不能自行关闭。", "更换闭门器，防火门恢复常闭。"),
    "GEN-M-10": ("3具灭火器超过检验期，检查卡漏签两个月。", "更换过期灭火器，每月检查并签字。"),
    "GEN-M-11": ("二楼消火栓箱被文件柜挡住。", "移开文件柜，消火栓箱前地面划定禁放区。"),
    "GEN-M-13": ("本月自动消防设施维保记录缺失。", "联系维保单位补做维保并补齐记录。"),
    "GEN-M-14": (
        "车间私拉临时电线，工位旁使用大功率电热器。",
        "拆除临时线路，电工重新布线，禁止使用电热器。",
    ),
    "GEN-M-19": ("仓库货物紧贴灯具堆放，灯距不足。", "货物重新码放保持灯距，更换为冷光源灯具。"),
    "GEN-M-20": ("厂区消防车通道被送货车辆占用。", "车辆已挪走，划定装卸区，通道设置禁停标识。"),
    "GEN-M-21": ("办公室内发现电动自行车电池在充电。", "电池已移出，告知全员到室外充电点充电。"),
    "SMALL-M-04": ("门口通道堆放了进货纸箱。", "纸箱已清走，进货当天清理。"),
    "SMALL-M-06": ("店内后间有两名员工夜间住宿。", "员工已搬到店外宿舍，后间拆除床铺恢复储物。"),
    "SMALL-M-07": ("店内只有1具灭火器，压力不足。", "新购2具ABC干粉灭火器，放在收银台旁显眼位置。"),
    "SMALL-M-08": ("出口指示灯按试验按钮不亮。", "更换出口指示灯，测试正常。"),
    "SMALL-M-10": ("收银台下插排串接，有一段电线破损裸露。", "更换合格插座，电线穿管保护。"),
    "SMALL-M-11": ("店门口通道停放电动车充电。", "车辆已挪走，告知员工到小区充电棚充电。"),
    "SMALL-M-12": (
        "后厨存放两瓶备用液化气钢瓶，超量存放，未装报警切断装置。",
        "多余钢瓶退回供气站，安装燃气报警和切断装置。",
    ),
    "SMALL-M-13": ("灶台旁堆放纸箱，油烟罩油污较重。", "清理纸箱，清洗油烟罩，配备灭火毯。"),
    "SMALL-M-16": ("门前室外消火栓被广告牌遮挡。", "移走广告牌，消火栓周边保持畅通。"),
    "SMALL-M-17": ("有两天打烊检查未打卡。", "店长每天打烊检查并打卡，员工轮流提醒。"),
    "COMM-M-03": ("小区东门消防车通道被私家车占用，有两个地锁未拆。", "劝离车辆，拆除地锁，施划禁停标线。"),
    "COMM-M-06": ("3栋2单元楼道堆放旧家具和纸箱。", "联系业主清走杂物，张贴告示，保洁每周巡看。"),
    "COMM-M-07": (
        "5栋门厅有电动车停放充电，发现一处飞线充电。",
        "劝离车辆并拆除飞线，引导到集中充电棚充电。",
    ),
    "COMM-M-09": ("多栋楼梯间防火门被绳子拴住敞开。", "解开绳子，修复闭门器，张贴常闭提示。"),
    "COMM-M-10": ("2栋楼道应急照明灯不亮。", "更换灯具，逐层测试正常。"),
    "COMM-M-11": ("7栋消火栓箱内水带缺失。", "补齐水带，箱门加贴封条。"),
    "COMM-M-13": ("公共区域3具灭火器压力不足。", "更换灭火器，物业每月检查并签字。"),
    "COMM-M-14": (
        "消防水泵控制柜故障，稳压泵频繁启停，已报维保单位。",
        "更换控制柜主板，恢复自动状态，联动测试正常。",
    ),
    "COMM-M-15": ("本月消防水泵未试运行。", "已试运行并补记记录。"),
    "COMM-M-17": ("地下车库设备间堆放业主杂物。", "清理杂物，设备间加锁，张贴禁止堆放告示。"),
    "COMM-M-21": ("本月未开展消防宣传。", "张贴宣传海报，群发安全提示，走访独居老人。"),
    "KEY-P-02": ("值班室电暖器无人使用仍通电。", "已断电收起。"),
    "KEY-P-04": ("北侧楼梯间停放了保洁推车。", "推车已移走。"),
    "KEY-P-07": ("二楼防火门被推开未关。", "已关闭防火门。"),
    "KEY-P-11": ("门厅有一辆电动自行车停放。", "已联系车主推出。"),
    "KEY-P-13": ("下班后办公室电脑和饮水机未断电。", "已逐一断电。"),
}
GENERIC = ("现场检查不符合要求，已拍照登记。", "已按整改要求完成整改，现场复查合格。")
REJECTIONS = (
    "现场复查仍有部分问题没有整改到位，请整改后重新提交。",
    "照片只拍到局部，看不出整改效果，请补拍整改后的全貌。",
    "复查时发现同样的问题又出现了，请落实长效措施后再提交。",
)
PATROL_FINDINGS = ("KEY-P-02", "KEY-P-04", "KEY-P-07", "KEY-P-11", "KEY-P-13")
# Items that fail more often in practice: picked more often (weight), the rest of the list weighs 1.
COMMON_FAILURES = {
    code: 4
    for code in (
        "KEY-M-11", "KEY-M-15", "KEY-M-24", "KEY-M-36", "GEN-M-06", "GEN-M-09", "GEN-M-10", "GEN-M-21",
        "SMALL-M-04", "SMALL-M-07", "SMALL-M-10", "SMALL-M-11", "COMM-M-06", "COMM-M-07", "COMM-M-09",
        "COMM-M-13",
    )
}  # fmt: skip


def _not_applicable(tenant: Tenant, item_code: str) -> bool:
    """The items a tenant answers "not applicable" every month, from what its premises are."""
    premises = tenant.premises or {}
    subtype = tenant.subtype or ""
    rules: dict[str, bool] = {
        "KEY-M-25": not premises.get("fire_control_room"),
        "KEY-M-26": not premises.get("fire_control_room"),
        "KEY-M-31": subtype in {"library", "flammable_goods", "labour_intensive"},
        "GEN-M-16": subtype in {"office", "bank_branch", "car_dealer"},
        "GEN-M-19": subtype not in {"warehouse", "workshop", "printing", "supermarket"},
        "SMALL-M-09": subtype not in {"hotel", "entertainment", "internet_cafe", "beauty_bath"},
        "SMALL-M-12": subtype != "eatery",
        "SMALL-M-13": subtype != "eatery",
        "SMALL-M-18": subtype != "workshop",
        "COMM-M-04": subtype != "high_rise",
        "COMM-M-14": subtype == "old_estate",
        "COMM-M-16": subtype != "high_rise",
        "COMM-M-20": subtype != "high_rise",
    }
    return rules.get(item_code, False)


# -- the result ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignDue:
    """A submitted self-check its responsible person signed at ``at``."""

    selfcheck_id: uuid.UUID
    tenant_id: uuid.UUID
    period: str
    user_id: uuid.UUID
    at: datetime


@dataclass
class History:
    start: datetime
    end: datetime
    tenants: list[str] = field(default_factory=list)  # codes of the tenants with history
    signed: list[SignDue] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


# -- the timeline ----------------------------------------------------------------------------------

Event = Callable[[datetime], Awaitable[None]]


class _Timeline:
    """Events in time order; what would happen after ``end`` (now) has not happened yet and is dropped."""

    def __init__(self, end: datetime) -> None:
        self.end = end
        self._heap: list[tuple[datetime, int, Event]] = []
        self._seq = itertools.count()  # same moment: in the order planned

    def at(self, when: datetime, event: Event) -> bool:
        if when >= self.end:
            return False
        heapq.heappush(self._heap, (when, next(self._seq), event))
        return True

    async def run(self) -> None:
        while self._heap:
            when, _seq, event = heapq.heappop(self._heap)
            await event(when)


def _local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), SHANGHAI).astimezone(UTC)


def _first_day(period: str) -> date:
    year, month = (int(p) for p in period.split("-"))
    return date(year, month, 1)


@dataclass
class _Unit:
    tenant: Tenant
    code: str
    habits: Habits
    rng: random.Random
    responsible: User
    manager: User  # small places have none: the owner (responsible person) manages
    staff: list[User]
    wardens: list[User]

    def member(self, user: User) -> HazardActor:
        return HazardActor(
            ActorKind.MEMBER, user.id, can_verify=user.id in (self.manager.id, self.responsible.id)
        )

    def fixer(self) -> User:
        return self.rng.choice(self.staff) if self.staff and self.rng.random() < 0.7 else self.manager

    def verifier_for(self, fixer: User) -> User:
        """Someone other than the fixer where the unit has one (the manager, or the responsible person)."""
        return self.responsible if fixer.id == self.manager.id else self.manager


class _Simulation:
    def __init__(self, session: AsyncSession, history: History) -> None:
        from portal.config import get_settings
        from portal.evidence.services import Limits
        from portal.evidence.store import current_storage

        self.session = session
        self.history = history
        self.timeline = _Timeline(history.end)
        self.storage = current_storage()  # the process's evidence storage, as the outbox handlers use
        self.limits = Limits.from_settings(get_settings())
        self.phones = DemoPhones(get_settings())
        self.units: list[_Unit] = []
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
        self, unit: _Unit, owner: OwnerType, owner_id: uuid.UUID, user: User, at: datetime
    ) -> str:
        """Upload one photo the way a phone does: ask for a slot, upload to storage, complete."""
        from portal.evidence.services import Uploader, complete_upload, request_slot

        data = _photo_bytes(unit.rng, at)
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
                filename=f"IMG_{at.astimezone(SHANGHAI):%Y%m%d_%H%M%S}.jpg",
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
        unit: _Unit,
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

    def _fate(self, unit: _Unit, item: ChecklistItem) -> str:
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
        self, unit: _Unit, hazard: Hazard, fate: str, opened: datetime, by: User | None = None
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

    def _findings(self, unit: _Unit, items: list[ChecklistItem], months_back: int) -> dict[str, str | None]:
        rng, habits = unit.rng, unit.habits
        usable = [i for i in items if not _not_applicable(unit.tenant, i.code)]
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

    def _sitting_day(self, unit: _Unit, period: str, months_back: int) -> datetime:
        rng = unit.rng
        deadline = signing_deadline(period).astimezone(SHANGHAI).date()
        if months_back in unit.habits.late:
            day = deadline + timedelta(days=rng.randint(2, 10))
        else:  # the last ten days of the month or the first days of the next, before the deadline
            first = _first_day(period) + timedelta(days=19)
            day = first + timedelta(days=rng.randint(0, (deadline - first).days - 2))
        return _local(day, rng.randint(9, 16), rng.randint(0, 59))

    def plan_month(self, unit: _Unit, period: str, months_back: int) -> None:
        # The scheduler's monthly job makes the self-check on the 1st (jobs.open_periods → ensure_selfcheck).
        async def create(at: datetime) -> None:
            with self._as(None):
                self.alive.append(await sc_services.ensure_selfcheck(self.session, unit.tenant, period))

        self.timeline.at(_local(_first_day(period), 0, 5), create)
        if months_back in unit.habits.unsubmitted and unit.rng.random() < 0.5:
            return  # never even opened
        self.timeline.at(
            self._sitting_day(unit, period, months_back), self._sitting(unit, period, months_back)
        )

    def _sitting(self, unit: _Unit, period: str, months_back: int) -> Event:
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
                    elif _not_applicable(unit.tenant, item.code):
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

    def plan_commitments(self, unit: _Unit, start: datetime) -> None:
        """Each year the history touches, the unit's commitment is prepared and signed in its first days."""
        first_year = start.astimezone(SHANGHAI).year
        for year in range(first_year, self.timeline.end.astimezone(SHANGHAI).year + 1):
            day = max(start.astimezone(SHANGHAI).date(), date(year, 1, 2)) + timedelta(days=1)
            at = _local(day, 9, 30)  # not from unit.rng: the months planned after must not change

            async def run(when: datetime, year: int = year) -> None:
                await self.phones.commit_for_year(
                    self.session, unit.tenant, unit.manager, unit.responsible, year, when
                )
                self.history.counts["commitments.signed"] += 1

            self.timeline.at(at, run)

    def _signing_due(self, unit: _Unit, selfcheck_id: uuid.UUID, period: str) -> Event:
        async def run(at: datetime) -> None:
            # The responsible person signs the frozen report with their phone's passkey, at this point of the
            # timeline: the daily jobs that run after it see it signed (on time when it was).
            await self.phones.sign_report(self.session, selfcheck_id, unit.tenant, unit.responsible, at)
            self.history.signed.append(SignDue(selfcheck_id, unit.tenant.id, period, unit.responsible.id, at))
            self.history.counts["selfchecks.signed"] += 1

        return run

    # -- patrols -----------------------------------------------------------------------------------

    def plan_patrols(self, unit: _Unit, first: date, last: date) -> None:
        rng, habits = unit.rng, unit.habits
        day = first
        while day <= last:
            slots = patrols.slots(unit.tenant, day)
            if slots and rng.random() < habits.patrol_miss:
                slots.remove(rng.choice(slots))  # a round forgotten: the day counts as missed
            for slot in slots:
                if slot.round is PatrolRound.DAILY:
                    at = _local(day, rng.randint(8, 17), rng.randint(0, 59))
                else:
                    at = slot.start.astimezone(UTC) + timedelta(minutes=rng.randint(5, 100))
                    at = min(at, slot.end.astimezone(UTC) - timedelta(minutes=1))
                finding = rng.choice(PATROL_FINDINGS) if rng.random() < habits.patrol_finding else None
                who = unit.fixer()  # staff walk the rounds, now and then the manager
                self.timeline.at(at, self._patrol(unit, slot.round, who, finding))
            day += timedelta(days=1)

    def _patrol(self, unit: _Unit, round_: PatrolRound, who: User, finding: str | None) -> Event:
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
            self.timeline.at(_local(day, 0, 30), daily)
            day += timedelta(days=1)


def _photo_bytes(rng: random.Random, at: datetime) -> bytes:
    """A small JPEG standing for a phone photo of the fixed spot, with its capture time in EXIF (what the
    evidence processing reads), so the gallery shows when the picture was "taken" in the story."""
    from PIL import Image, ImageDraw

    wall = tuple(rng.randint(170, 225) for _ in range(3))
    img = Image.new("RGB", (320, 240), wall)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 180, 320, 240), fill=(rng.randint(90, 130),) * 3)  # floor
    left = rng.randint(30, 200)
    draw.rectangle((left, 60, left + 70, 180), fill=(rng.randint(60, 110), 70, 60))  # a door
    draw.rectangle((left + 10, 35, left + 60, 52), fill=(20, 150, 70))  # the green exit sign above it
    exif = Image.Exif()
    stamp = at.astimezone(SHANGHAI).strftime("%Y:%m:%d %H:%M:%S")
    exif[0x0132] = stamp
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = stamp
    sub[0x9011] = "+08:00"
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=70, exif=exif)
    return buf.getvalue()


# -- entry points ----------------------------------------------------------------------------------


async def _wardens(session: AsyncSession, tenant: Tenant) -> list[User]:
    if tenant.grid_id is None:
        return []
    rows = await session.execute(
        select(User)
        .join(WardenAssignment, WardenAssignment.user_id == User.id)
        .where(WardenAssignment.grid_id == tenant.grid_id)
        .order_by(WardenAssignment.created_at)
    )
    return list(rows.scalars())


def _onboarded_before(tenant: Tenant, start: datetime) -> None:
    """Back-date onboarding to before the history (see the module docstring): patrol duty, the patrol log
    and the missed-patrol lapse count from ``created_at``, and history before it would not count."""
    tenant.created_at = start - timedelta(days=1)


async def build_history(session: AsyncSession, city: DemoCity, *, now: datetime | None = None) -> History:
    """Replay :data:`PERIODS` months (and this month so far) for the :data:`HISTORY` tenants of ``city``."""
    end = now or datetime.now(UTC)
    current = period_of(end)
    periods = [current]
    for _n in range(PERIODS):
        periods.append(previous_period(periods[-1]))  # periods[k]: k months back
    start = _local(_first_day(periods[-1]))
    history = History(start=start, end=end)
    sim = _Simulation(session, history)
    raw = {t["code"]: t for t in city.raw["tenants"]}
    for code, tenant in sorted(city.tenants.items()):
        habits = HISTORY.get(base_code(code))
        members = raw[code].get("members") or {}
        if habits is None or not members.get("responsible"):
            continue
        responsible = city.users[members["responsible"]["login"]]
        manager = city.users[members["manager"]["login"]] if members.get("manager") else responsible
        unit = _Unit(
            tenant=tenant,
            code=base_code(code),
            habits=habits,
            rng=random.Random(f"{SEED}:{base_code(code)}"),
            responsible=responsible,
            manager=manager,
            staff=[city.users[p["login"]] for p in members.get("staff") or []],
            wardens=await _wardens(session, tenant),
        )
        if not unit.wardens:
            continue  # nobody outside the unit could verify a major hazard: no believable history
        sim.units.append(unit)
        history.tenants.append(code)
        _onboarded_before(tenant, start)
    await session.flush()
    last_day = end.astimezone(SHANGHAI).date()
    for unit in sim.units:
        sim.plan_commitments(unit, start)
        for months_back in range(PERIODS, -1, -1):
            sim.plan_month(unit, periods[months_back], months_back)
        if patrols.patrols_required(unit.tenant):
            sim.plan_patrols(unit, start.astimezone(SHANGHAI).date(), last_day)
    sim.plan_daily_jobs(start.astimezone(SHANGHAI).date() + timedelta(days=1), last_day)
    await sim.timeline.run()
    await session.flush()
    return history


@contextmanager
def _quiet_jobs() -> Iterator[None]:
    """The replay runs the daily jobs some 200 times; their one-line reports would bury the demo's output.
    Keep what is worth reading: warnings and worse."""
    with structlog.testing.capture_logs() as captured:
        try:
            yield
        finally:
            kept = [e for e in captured if e.get("log_level") in ("warning", "error", "critical")]
    for entry in kept:
        level, event = entry.pop("log_level"), entry.pop("event", "")
        getattr(log, level)(event, **entry)


async def seed_history(session: AsyncSession, city: DemoCity) -> None:
    """The ``portal demo`` step (after ``seed_cycle``: the catalogue must be loaded)."""
    with _quiet_jobs():
        history = await build_history(session, city)
    log.info(
        "demo_history",
        tenants=len(history.tenants),
        since=history.start.isoformat(),
        signed=len(history.signed),
        **dict(sorted(history.counts.items())),
    )
