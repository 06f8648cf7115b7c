"""The tenant dashboard (the tenant's home page) on both databases: this month's self-check, open hazards
by severity and age, the patrol streak, the ledger's open entries and the 12-month compliance chart with
its table. Every row is made through the services of portal/selfcheck."""

from __future__ import annotations

import base64
import hashlib
import html as html_text
import re
import uuid
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from xml.etree import ElementTree

from litestar.testing import AsyncTestClient

from portal.config import Settings
from portal.core import clock, i18n
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.dashboard import charts
from portal.dashboard import services as dashboard
from portal.dashboard.services import AgeBucket, Outcome
from portal.frontend import jinja_environment
from portal.models.identity import User
from portal.models.selfcheck import Answer, HazardSource, PatrolRound, SelfCheck, Severity
from portal.models.tenants import Jurisdiction, MemberRole, Tenant, TenantKind, UnitCategory
from portal.selfcheck.checklists import services as catalogue
from portal.selfcheck.deadlines import period_of, previous_period, signing_deadline
from portal.selfcheck.hazards import services as hz
from portal.selfcheck.ledger import services as accountability
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.patrols import services as patrols
from portal.selfcheck.policies import ActorKind, HazardActor
from portal.tenants import services as ts
from tests.fixtures.factories import World, unique_uscc
from tests.fixtures.web import sign_in

SVG = "{http://www.w3.org/2000/svg}"
MEMBER = HazardActor(ActorKind.MEMBER, None, can_verify=True)


def _periods(now: datetime, count: int) -> list[str]:
    """This period and the ``count - 1`` before it, newest first."""
    out = [period_of(now)]
    while len(out) < count:
        out.append(previous_period(out[-1]))
    return out


async def _selfcheck(
    database: Database,
    tenant_id: uuid.UUID,
    period: str,
    *,
    by: uuid.UUID | None = None,
    submit_at: datetime | None = None,
    sign_at: datetime | None = None,
) -> SelfCheck:
    """A self-check for ``period``: left due, or answered (all pass) and submitted by ``by`` (the unit's
    responsible person), and maybe signed by them."""
    async with database.session(Scope.system("test dashboard: self-check")) as s:
        await catalogue.load_catalogue(s)
        tenant = await s.get(Tenant, tenant_id)
        assert tenant is not None
        created = await sc_services.ensure_selfcheck(s, tenant, period)
        assert created is not None
        if submit_at is None:
            return created
        sc = await sc_services.load(s, created.id)
        assert sc is not None
        assert by is not None
        for item in sc.checklist.items:
            await sc_services.answer(s, sc, item.code, Answer.PASS, user_id=by, now=submit_at)
        await sc_services.submit(s, sc, tenant, user_id=by, now=submit_at)
        if sign_at is not None:
            assert sc.report_sha256 is not None
            await sc_services.mark_signed(
                s, sc, user_id=by, evidence={}, signed_sha256=sc.report_sha256, now=sign_at
            )
        return sc


async def _hazard(
    database: Database,
    tenant_id: uuid.UUID,
    severity: Severity,
    opened: datetime,
    *,
    closed: datetime | None = None,
) -> uuid.UUID:
    """A hazard opened at ``opened`` (its deadline follows the policy), walked to closed at ``closed``."""
    async with database.session(Scope.tenant(tenant_id)) as s:
        hazard = await hz.open_hazard(
            s,
            tenant_id,
            hz.OpenHazard(HazardSource.REGULATOR, f"隐患{severity.value}", severity),
            MEMBER,
            now=opened,
        )
        if closed is not None:
            await hz.transition(s, hazard, hz.Action.START, MEMBER, now=closed)
            await hz.transition(
                s, hazard, hz.Action.SUBMIT_FIX, MEMBER, reason="已整改", evidence_ids=["photo"], now=closed
            )
            await hz.transition(s, hazard, hz.Action.VERIFY, MEMBER, now=closed)
        return hazard.id


async def test_the_figures_of_a_unit_with_a_history(database: Database, world: World) -> None:
    a = world.tenants["a"]
    responsible = world.users["both"].id
    now = datetime.now(UTC)
    p0, p1, p2, p3, p4, p5 = _periods(now, 6)
    await _selfchecks_history(database, a.id, responsible, (p0, p1, p2, p3, p4, p5))
    major_old = await _hazard(database, a.id, Severity.MAJOR, now - timedelta(days=40))
    await _hazard(database, a.id, Severity.GENERAL, now - timedelta(days=10))
    await _hazard(database, a.id, Severity.GENERAL, now - timedelta(hours=2))
    await _hazard(database, a.id, Severity.MAJOR, now - timedelta(days=3))
    # Closed this month: one on time (2 days old), one 10 days after its 30-day deadline.
    await _hazard(database, a.id, Severity.GENERAL, now - timedelta(days=2), closed=now)
    await _hazard(database, a.id, Severity.GENERAL, now - timedelta(days=40), closed=now)

    async with database.session(Scope.tenant(a.id)) as s:
        tenant = await s.get(Tenant, a.id)
        assert tenant is not None
        dash = await dashboard.build(s, tenant, with_ledger=True, now=now)

    assert [m.period for m in dash.months] == [*reversed(_periods(now, 12))]
    outcomes = {m.period: m.outcome for m in dash.months}
    assert outcomes[p0] is Outcome.UNDER_WAY
    assert outcomes[p1] is (Outcome.MISSED if signing_deadline(p1) < now else Outcome.UNDER_WAY)
    assert outcomes[p2] is Outcome.ON_TIME
    assert outcomes[p3] is Outcome.LATE
    assert outcomes[p4] is Outcome.UNSIGNED
    assert outcomes[p5] is Outcome.MISSED
    # Before the unit joined (this month) and without a self-check: no figure, and no blame either.
    assert {m.outcome for m in dash.months[:6]} == {Outcome.NOT_JOINED}
    assert dash.current is not None and dash.current.period == p0 and not dash.current_overdue
    assert dash.previous is not None and dash.previous.period == p1
    assert dash.previous_overdue is (signing_deadline(p1) < now)

    ages = dash.hazards
    assert ages.count(Severity.MAJOR, AgeBucket.OVER_30) == 1  # the 40-day-old major hazard
    assert ages.count(Severity.MAJOR, AgeBucket.UNDER_7) == 1
    assert ages.count(Severity.GENERAL, AgeBucket.FROM_7_TO_30) == 1
    assert ages.count(Severity.GENERAL, AgeBucket.UNDER_7) == 1
    assert ages.count(Severity.GENERAL, AgeBucket.OVER_30) == 0  # the old general one is closed
    assert ages.total == 4 and ages.past_deadline == {Severity.MAJOR: 1, Severity.GENERAL: 0}
    this_month = dash.months[-1]
    assert (this_month.hazards_closed, this_month.hazards_closed_on_time) == (2, 1)
    assert this_month.closed_on_time_percent == 50
    assert dash.months[-2].closed_on_time_percent is None
    assert not dash.patrols.required  # a general unit: no patrol duty

    # The same self-check a week past its deadline: overdue, also before the flagging job has run.
    later = signing_deadline(p0) + timedelta(days=7)
    async with database.session(Scope.tenant(a.id)) as s:
        tenant = await s.get(Tenant, a.id)
        assert tenant is not None
        later_dash = await dashboard.build(s, tenant, with_ledger=False, now=later)
        overdue = await s.get(SelfCheck, dash.current.id)
        assert overdue is not None and overdue.overdue_at is None
    assert (
        later_dash.previous is not None and later_dash.previous.period == p0 and later_dash.previous_overdue
    )
    assert later_dash.months[-2].outcome is Outcome.MISSED
    assert later_dash.ledger == [] and not later_dash.ledger_shown

    # The ledger: lapses found by the accountability run, open ones on the dashboard.
    async with database.session(Scope.system("test dashboard: ledger")) as s:
        for sc in (await s.execute(_selfchecks_of(a.id))).scalars():
            sc_services.mark_overdue(sc, now)
        hazard = await s.get(hz.Hazard, major_old)
        assert hazard is not None and hz.mark_overdue(hazard, now)
        await accountability.run(s, now, tenant_ids=[a.id])
    async with database.session(Scope.tenant(a.id)) as s:
        tenant = await s.get(Tenant, a.id)
        assert tenant is not None
        dash = await dashboard.build(s, tenant, with_ledger=True, now=now)
    kinds = sorted(r.entry.kind.value for r in dash.ledger)
    assert "overdue_hazard" in kinds and "overdue_selfcheck" in kinds
    assert dash.ledger_open == len(dash.ledger) and all(r.entry.resolved_at is None for r in dash.ledger)


def _selfchecks_of(tenant_id: uuid.UUID):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    return select(SelfCheck).where(SelfCheck.tenant_id == tenant_id)


async def _selfchecks_history(
    database: Database, tenant_id: uuid.UUID, responsible: uuid.UUID, periods: tuple[str, ...]
) -> None:
    """p0, p1: opened only; p2 signed on time; p3 signed a day late; p4 submitted, never signed; p5 missed."""
    p0, p1, p2, p3, p4, p5 = periods
    for period in (p0, p1, p5):
        await _selfcheck(database, tenant_id, period)
    early = signing_deadline(p2) - timedelta(days=3)
    await _selfcheck(database, tenant_id, p2, by=responsible, submit_at=early, sign_at=early)
    late = signing_deadline(p3) + timedelta(days=1)
    await _selfcheck(database, tenant_id, p3, by=responsible, submit_at=late, sign_at=late)
    await _selfcheck(
        database, tenant_id, p4, by=responsible, submit_at=signing_deadline(p4) - timedelta(days=1)
    )


async def test_the_home_page_shows_the_figures_with_the_chart_and_its_table(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a = world.tenants["a"]
    now = datetime.now(UTC)
    periods = _periods(now, 12)
    await _selfchecks_history(database, a.id, world.users["both"].id, tuple(periods[:6]))
    major_id = await _hazard(database, a.id, Severity.MAJOR, now - timedelta(days=40))
    await _hazard(database, a.id, Severity.GENERAL, now - timedelta(days=1))
    async with database.session(Scope.system("test dashboard: ledger")) as s:
        hazard = await s.get(hz.Hazard, major_id)
        assert hazard is not None and hz.mark_overdue(hazard, now)
        await accountability.run(s, now, tenant_ids=[a.id])
    client.cookies.set("lang", "en")
    await sign_in(client, world.users["manager_a"].login)
    home = await client.get(f"/t/{a.id}")
    assert home.status_code == 200
    html = home.text

    # This month's self-check, linked, with its deadline; last month's while unsigned.
    current = re.search(rf'id="dash-selfcheck-{periods[0]}" data-status="(\w+)" data-overdue="(\w+)"', html)
    assert current is not None and current.groups() == ("due", "false")
    previous = re.search(rf'id="dash-selfcheck-{periods[1]}" data-status="(\w+)" data-overdue="(\w+)"', html)
    assert previous is not None and previous.group(2) == (
        "true" if signing_deadline(periods[1]) < now else "false"
    )
    assert f"Self-check {periods[0]}" in html and "sign by" in html

    # Open hazards: the 40-day-old major one in the "over 30 days" column, past its deadline.
    assert 'id="dash-hazards-summary" data-open="2" data-past-deadline="1"' in html
    major = re.search(r'<tr data-severity="major">(.*?)</tr>', html, re.S)
    general = re.search(r'<tr data-severity="general">(.*?)</tr>', html, re.S)
    assert major is not None and general is not None
    cells = dict(re.findall(r'data-age="(\w+)">(?:<strong>)?(\d+)', major.group(1)))
    assert cells == {"under_7": "0", "7_to_30": "0", "over_30": "1", "past_deadline": "1"}
    cells = dict(re.findall(r'data-age="(\w+)">(?:<strong>)?(\d+)', general.group(1)))
    assert cells == {"under_7": "1", "7_to_30": "0", "over_30": "0", "past_deadline": "0"}
    assert f'href="/t/{a.id}/hazards/"' in html

    # The chart and the table carry the same 12 periods, in the same words.
    svg = re.search(r"<svg[^>]*>.*?</svg>", html, re.S)
    assert svg is not None
    chart = svg.group(0)
    assert 'role="img"' in chart and 'aria-label="Monthly self-checks of the last 12 months' in chart
    assert 'aria-describedby="compliance-figures"' in chart
    assert "<script" not in chart and "<title>Monthly self-checks" in chart
    table = re.search(r'<table class="table" id="compliance-figures">(.*?)</table>', html, re.S)
    assert table is not None
    rows = re.findall(r'<tr data-period="([\d-]+)" data-outcome="(\w+)">', table.group(1))
    assert [p for p, _o in rows] == periods  # newest first
    svg_tree = ElementTree.fromstring(chart)
    axes = {
        g.get("class", "")[:6]: g for g in svg_tree.iter(f"{SVG}g") if g.get("class", "").startswith("axis")
    }
    x_labels = [t.text for t in axes["axis x"].iter(f"{SVG}text")]
    assert x_labels == [charts.month_label(p) for p in reversed(periods)]  # oldest first, like a timeline
    y_labels = {t.text for t in axes["axis y"].iter(f"{SVG}text")}
    assert y_labels == {"on time", "late", "not signed", "missed", "under way"}  # each height named
    assert f"Months {periods[-1]} to {periods[0]}" in chart
    # Its style block is allowed by the page's Content-Security-Policy through the hash of its text as the
    # browser reads it (entities decoded: the block sits in inline SVG, not raw HTML text).
    style = re.search(r"<style[^>]*>(.*?)</style>", chart, re.S)
    assert style is not None and 'style="' not in chart
    digest = base64.b64encode(hashlib.sha256(html_text.unescape(style.group(1)).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in home.headers["content-security-policy"].split("style-src")[1].split(";")[0]
    outcome_of = dict(rows)
    assert outcome_of[periods[2]] == "on_time" and outcome_of[periods[3]] == "late"
    assert outcome_of[periods[4]] == "unsigned" and outcome_of[periods[5]] == "missed"
    assert outcome_of[periods[0]] == "under_way" and outcome_of[periods[11]] == "not_joined"
    for words in ("signed on time", "signed late", "submitted, never signed", "missed", "under way"):
        assert f"<td>{words}</td>" in table.group(1), words
    # Each outcome drawn in the chart is one bar: as many bars with a height as months with an outcome.
    drawn = sum(1 for m in rows if m[1] != "not_joined")
    heights = re.findall(r'<rect x="[\d.]+" y="[\d.]+" rx="0" ry="0" width="[\d.]+" height="([\d.]+)"', chart)
    assert sum(1 for h in heights if float(h) > 0) == drawn

    # The ledger section with its link (manager), the nav links and the people are all there.
    assert f'href="/t/{a.id}/accountability/"' in html and 'id="dash-ledger-open" data-open="1"' in html
    assert '<li data-kind="overdue_hazard" data-step="manager">' in html
    assert f'<a href="/t/{a.id}/hazards/{major_id}">隐患major</a>' in html and "with the manager" in html
    for link in ("selfchecks/", "hazards/", "accountability/", "photos", "audit"):
        assert f'href="/t/{a.id}/{link}"' in html
    assert "People" in html and "管理人a" in html and f'href="/t/{a.id}/people/"' in html


async def test_who_sees_which_parts(client: AsyncTestClient, database: Database, world: World) -> None:
    """Staff see the figures but not the ledger (its page is the managers'), nor the roster management;
    the regulator of the district sees the ledger; a foreign tenant is a 404."""
    a = world.tenants["a"]
    async with database.session(Scope.system("test dashboard: staff")) as s:
        tenant = await s.get(Tenant, a.id)
        staff = await ts.create_user(s, login=f"st.{uuid.uuid4().hex[:8]}", display_name="员工")
        await ts.add_member(s, tenant, staff, MemberRole.STAFF)  # type: ignore[arg-type]
    client.cookies.set("lang", "en")
    await sign_in(client, staff.login)
    home = await client.get(f"/t/{a.id}")
    assert home.status_code == 200 and 'id="dash-hazards-summary" data-open="0"' in home.text
    assert 'id="dash-ledger-open"' not in home.text and f'href="/t/{a.id}/people/"' not in home.text
    assert 'id="compliance-figures"' in home.text and "No open hazards." in home.text
    await sign_in(client, world.users["regulator"].login)
    assert 'id="dash-ledger-open" data-open="0"' in (await client.get(f"/t/{a.id}")).text
    assert (await client.get(f"/t/{world.tenants['c'].id}")).status_code == 404


async def _key_unit(database: Database, world: World) -> tuple[Tenant, User]:
    tag = uuid.uuid4().hex[:8]
    async with database.session(Scope.system("test dashboard: key unit")) as s:
        await catalogue.load_catalogue(s)
        street = await s.get(Jurisdiction, world.tenants["a"].jurisdiction_id)
        assert street is not None
        tenant = await ts.register_tenant(
            s,
            code=f"K{tag}",
            kind=TenantKind.UNIT,
            category=UnitCategory.KEY,
            name_zh=f"重点单位{tag}",
            name_en=f"Key unit {tag}",
            address="测试路3号",
            jurisdiction=street,
            uscc=unique_uscc(),
            premises={"workers": 300},  # the daily round only
        )
        manager = await ts.create_user(s, login=f"km.{tag}", display_name="重点单位管理人")
        await ts.add_member(s, tenant, manager, MemberRole.MANAGER)
    return tenant, manager


async def test_a_key_units_patrol_streak(client: AsyncTestClient, database: Database, world: World) -> None:
    unit, manager = await _key_unit(database, world)
    today = patrols.local_day(datetime.now(UTC))
    # The onboarding day goes unpatrolled; the three days after it are complete.
    for n in (1, 2, 3):
        async with database.session(Scope.tenant(unit.id)) as s:
            t = await s.get(Tenant, unit.id)
            assert t is not None
            when = datetime.combine(today + timedelta(days=n), time(9, 0), clock.zone()).astimezone(UTC)
            await patrols.log_patrol(s, t, PatrolRound.DAILY, {}, user_id=None, now=when)
    async with database.session(Scope.tenant(unit.id)) as s:
        t = await s.get(Tenant, unit.id)
        assert t is not None
        at_noon = datetime.combine(today + timedelta(days=3), time(12, 0), clock.zone()).astimezone(UTC)
        dash = await dashboard.build(s, t, with_ledger=True, now=at_noon)
        streak = await patrols.streak(s, t, today + timedelta(days=3))
    assert dash.patrols.required and dash.patrols.streak == streak == 3 and not dash.patrols.streak_capped
    assert dash.patrols.missed_days == 1  # the onboarding day

    # Over HTTP (today): the onboarding day is still under way, so no streak yet and nothing missed.
    client.cookies.set("lang", "en")
    await sign_in(client, manager.login)
    home = await client.get(f"/t/{unit.id}")
    assert home.status_code == 200
    assert 'id="dash-patrol-streak" data-streak="0" data-missed="0"' in home.text
    assert "0 days in a row complete" in home.text and f'href="/t/{unit.id}/patrols/"' in home.text


def test_every_figure_of_the_patrol_part_renders(settings: Settings) -> None:
    """The parts the HTTP tests cannot reach today (a long streak, missed days), rendered directly."""
    env = jinja_environment(settings)
    i18n.set_locale("en")
    try:
        for figures, expected in (
            (dashboard.PatrolFigures(True, 60, True, 3, 30), ("at least 60 days in a row complete", ">3<")),
            (dashboard.PatrolFigures(True, 1, False, 0, 30), ("1 day in a row complete", ">0<")),
        ):
            html = env.get_template("dashboard/_patrols.html").render(
                dash=SimpleNamespace(patrols=figures), tenant=SimpleNamespace(id="t")
            )
            assert "Days missed in the last 30 days:" in html
            for text in expected:
                assert text in html, text
    finally:
        i18n.set_locale(i18n.DEFAULT_LOCALE)


def test_a_month_without_a_self_check() -> None:
    """Missed once the unit was on the platform for the whole month; never blamed for the month it joined
    (the first self-check opens the month after) or before; under way until the deadline."""
    now = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)
    assert dashboard.outcome_of(None, "2026-09", now, joined="2026-08") is Outcome.MISSED
    assert dashboard.outcome_of(None, "2026-08", now, joined="2026-08") is Outcome.NOT_JOINED
    assert dashboard.outcome_of(None, "2026-07", now, joined="2026-08") is Outcome.NOT_JOINED
    assert dashboard.outcome_of(None, "2026-11", now, joined="2026-11") is Outcome.UNDER_WAY
    assert dashboard.outcome_of(None, "2026-10", now, joined="2026-01") is Outcome.MISSED  # due 11-05
    assert dashboard.periods_back("2026-02", 3) == ["2025-12", "2026-01", "2026-02"]


def test_every_chart_carries_the_one_style_block_the_policy_allows() -> None:
    """Whatever the figures and the language, the chart's style block is the same text, so one hash in the
    Content-Security-Policy (computed at start-up) allows it on every page."""
    outcomes = list(Outcome)
    drawn = set()
    for locale in ("zh_CN", "en"):
        with i18n.using_locale(locale):
            for shift in range(3):
                months = [
                    dashboard.Month(f"2026-{m:02d}", outcomes[(m + shift) % len(outcomes)], None)
                    for m in range(1, 13 - shift)
                ]
                svg = str(charts.compliance_chart(months, described_by=charts.TABLE_ID))
                style = re.search(r"<style[^>]*>(.*?)</style>", svg, re.S)
                assert style is not None and 'style="' not in svg
                text = html_text.unescape(style.group(1))
                drawn.add("sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode())
    assert drawn == {charts.style_hash()}
