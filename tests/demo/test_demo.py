"""`portal demo` seeds the whole demo city through the real services, on both databases."""

from __future__ import annotations

from sqlalchemy import func, select

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo.seed import load_city, seed_into
from portal.models.grid import Grid, WardenAssignment
from portal.models.insurer import Consent
from portal.models.tenants import Jurisdiction, Membership, Tenant, TenantKind, UnitCategory


def _renamed(raw: dict, suffix: str) -> dict:
    """The demo city with every code and login made unique, so it can be seeded into a shared test DB."""
    import json

    text = json.dumps(raw, ensure_ascii=False)
    city = json.loads(text)

    def walk(node):  # type: ignore[no-untyped-def]
        if isinstance(node, dict):
            return {
                k: (
                    f"{v}{suffix}"
                    if k in {"code", "login", "jurisdiction", "committee", "grid", "tenant"}
                    and isinstance(v, str)
                    else walk(v)
                )
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [walk(x) for x in node]
        return node

    out = walk(city)
    for t in out["tenants"]:
        t["uscc"] = None if t["kind"] == "community" else t["uscc"]
    return out


async def test_demo_city_is_seeded_completely(database: Database) -> None:
    raw = load_city()
    suffix = "-" + __import__("uuid").uuid4().hex[:6]
    # USCCs are unique: seed the real ones only once per database, else drop them for the copy.
    async with database.session(Scope.system("test")) as s:
        have_real = (
            await s.execute(select(func.count()).select_from(Tenant).where(Tenant.code == "T01"))
        ).scalar()
    city_raw = _renamed(raw, suffix)
    if have_real:
        for t in city_raw["tenants"]:
            t["uscc"] = None
            if t["kind"] == "unit":
                from tests.fixtures.factories import unique_uscc

                t["uscc"] = unique_uscc()
    async with database.session(Scope.system("test")) as s:
        city = await seed_into(s, city_raw)
    assert len(city.tenants) == 40
    assert len(city.grids) == 16
    async with database.session(Scope.system("test")) as s:
        tenant_ids = [t.id for t in city.tenants.values()]
        kinds = (
            await s.execute(
                select(Tenant.kind, Tenant.category, func.count())
                .where(Tenant.id.in_(tenant_ids))
                .group_by(Tenant.kind, Tenant.category)
            )
        ).all()
        counts = {(k, c): n for k, c, n in kinds}
        assert counts[(TenantKind.UNIT, UnitCategory.KEY)] == 10
        assert counts[(TenantKind.UNIT, UnitCategory.GENERAL)] == 10
        assert counts[(TenantKind.UNIT, UnitCategory.SMALL_PLACE)] == 12
        assert counts[(TenantKind.COMMUNITY, None)] == 8
        members = (
            await s.execute(
                select(func.count()).select_from(Membership).where(Membership.tenant_id.in_(tenant_ids))
            )
        ).scalar_one()
        assert members >= 80
        consents = (
            await s.execute(
                select(func.count()).select_from(Consent).where(Consent.tenant_id.in_(tenant_ids))
            )
        ).scalar_one()
        assert consents == 6
        grids = [g.id for g in city.grids.values()]
        wardens = (
            await s.execute(
                select(func.count()).select_from(WardenAssignment).where(WardenAssignment.grid_id.in_(grids))
            )
        ).scalar_one()
        assert wardens >= 16
        # Every tenant sits in a street of its own city and in a grid of that street's committee.
        street_paths = {j.path for j in city.jurisdictions.values() if j.level.value == "street"}
        for t in city.tenants.values():
            assert t.jurisdiction_path in street_paths
        assert (
            await s.execute(select(func.count()).select_from(Grid).where(Grid.id.in_(grids)))
        ).scalar_one() == 16
        assert (
            await s.execute(
                select(func.count()).select_from(Jurisdiction).where(Jurisdiction.code.endswith(suffix))
            )
        ).scalar_one() == 10
