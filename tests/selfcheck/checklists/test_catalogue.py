"""The checklist catalogue: loaded from YAML data, versioned, chosen by tenant kind and category."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.tenants import Tenant, TenantKind, UnitCategory
from portal.selfcheck.checklists import services as catalogue


async def test_bundled_catalogue_loads_idempotently(database: Database) -> None:
    async with database.session(Scope.system("test")) as s:
        first = await catalogue.load_catalogue(s)
    async with database.session(Scope.system("test")) as s:
        second = await catalogue.load_catalogue(s)
    assert {(r.code, r.version) for r in first} == {
        ("COMM-M", 1),
        ("GEN-M", 1),
        ("KEY-M", 1),
        ("KEY-P", 1),
        ("SMALL-M", 1),
        ("WARD", 1),
    }
    assert all(r.outcome == "unchanged" for r in second)


@pytest.mark.parametrize(
    ("kind", "category", "code", "items"),
    [
        (TenantKind.UNIT, UnitCategory.KEY, "KEY-M", 38),
        (TenantKind.UNIT, UnitCategory.GENERAL, "GEN-M", 22),
        (TenantKind.UNIT, UnitCategory.SMALL_PLACE, "SMALL-M", 18),
        (TenantKind.COMMUNITY, None, "COMM-M", 22),
    ],
)
async def test_checklist_follows_kind_and_category(
    database: Database, kind: TenantKind, category: UnitCategory | None, code: str, items: int
) -> None:
    async with database.session(Scope.system("test")) as s:
        await catalogue.load_catalogue(s)
        chosen = await catalogue.checklist_for(s, Tenant(kind=kind, category=category))
    assert chosen is not None and chosen.code == code and len(chosen.items) == items
    assert [i.position for i in chosen.items] == list(range(1, items + 1))
    assert all(i.why_zh and i.how_to_fix_zh and i.basis for i in chosen.items)


def _variant(tmp_path: Path, version: int, text: str) -> Path:
    raw = yaml.safe_load((catalogue.CATALOGUE_DIR / "small-place-monthly.yaml").read_text("utf-8"))
    raw["code"] = "TEST-M"
    raw["version"] = version
    for i, item in enumerate(raw["items"], start=1):
        item["code"] = f"TEST-M-{i:02d}"
    raw["items"][0]["text"]["zh"] = text
    path = tmp_path / f"test-v{version}-{abs(hash(text))}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    return path


async def test_new_version_supersedes_and_changed_text_needs_a_version(
    database: Database, tmp_path: Path
) -> None:
    import uuid

    marker = uuid.uuid4().hex[:6]
    async with database.session(Scope.system("test")) as s:
        existing = (
            (
                await s.execute(
                    catalogue.select(catalogue.Checklist.version).where(catalogue.Checklist.code == "TEST-M")
                )
            )
            .scalars()
            .all()
        )
    base = max(existing, default=0) + 1
    async with database.session(Scope.system("test")) as s:
        [v1] = await catalogue.load_catalogue(s, [_variant(tmp_path, base, f"第一版{marker}")])
    assert v1.outcome == "published"
    with pytest.raises(catalogue.CatalogueError, match="needs a new version"):
        async with database.session(Scope.system("test")) as s:
            await catalogue.load_catalogue(s, [_variant(tmp_path, base, f"改过的{marker}")])
    async with database.session(Scope.system("test")) as s:
        [v2] = await catalogue.load_catalogue(s, [_variant(tmp_path, base + 2, f"第二版{marker}")])
    async with database.session(Scope.system("test")) as s:
        rows = {
            c.version: c.status.value
            for c in (
                await s.execute(
                    catalogue.select(catalogue.Checklist).where(catalogue.Checklist.code == "TEST-M")
                )
            ).scalars()
        }
    assert v2.outcome == "published" and rows[base] == "superseded" and rows[base + 2] == "published"
    with pytest.raises(catalogue.CatalogueError, match="older than"):
        async with database.session(Scope.system("test")) as s:
            await catalogue.load_catalogue(s, [_variant(tmp_path, base + 1, f"中间版{marker}")])


def test_malformed_file_names_file_and_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("code: X-M\nversion: 0\n", "utf-8")
    with pytest.raises(catalogue.CatalogueError, match=r"(?s)bad\.yaml.*version"):
        catalogue.parse(bad)
