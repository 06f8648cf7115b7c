"""How each demo tenant with history keeps up (its habits and the stories forced on it), and what its
people write: the inputs of the simulation in :mod:`portal.demo.history_simulation`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from portal.models.tenants import Tenant

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


def like(base: Habits, **changes: Any) -> Habits:
    return replace(base, **changes)


HISTORY: dict[str, Habits] = {
    # key units that patrol once a day (see the module docstring for why only these)
    # garment factory: workers found sleeping in the finished-goods store (三合一); the warden rejects once
    "T08": like(AVERAGE, patrol_miss=0.04, forced={4: {"KEY-M-33": "rejected"}}),
    # petrol station: fire-pump control left on manual, set back at once, verified by the warden
    "T09": like(DILIGENT, forced={6: {"KEY-M-19": "spot"}}),
    # general units
    "T13": like(STRUGGLING, late=(5, 2), forced={4: {"GEN-M-14": "stalled"}}),  # machine workshop
    "T16": like(AVERAGE, forced={3: {"GEN-M-06": "rejected"}}),
    # small places
    "T22": like(DILIGENT, failure_chance=0.1),  # the clean noodle house of risk-grade.md
    "T25": like(STRUGGLING, late=(4,), unsubmitted=(1,)),  # mini KTV: last month never finished
    # communities
    # old estate: e-bikes charged in the stairwells, month after month; once rejected twice (reopened)
    "T34": like(
        AVERAGE,
        forced={5: {"COMM-M-07": None}, 3: {"COMM-M-07": "reopened"}, 1: {"COMM-M-07": None}},
    ),
    # high-rise estate: the fire-pump fault of risk-grade.md, a major hazard still open past its deadline
    # (two months back: last month's self-check may not be done yet early in a month)
    "T39": like(DILIGENT, forced={2: {"COMM-M-14": "left_open"}}),
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


def not_applicable(tenant: Tenant, item_code: str) -> bool:
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
