"""``portal checklists load`` as an operator runs it: the bundled catalogue, a new version, and a changed
text under an old version (refused, nothing loaded)."""

from __future__ import annotations

import uuid
from pathlib import Path

import yaml
from sqlalchemy import select

from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.models.selfcheck import Checklist, ChecklistStatus
from portal.selfcheck.checklists.services import CATALOGUE_DIR
from tests.fixtures.cli import run_portal


async def _versions(database: Database, code: str) -> dict[int, ChecklistStatus]:
    async with database.session(Scope.system("test")) as s:
        rows = await s.execute(select(Checklist.version, Checklist.status).where(Checklist.code == code))
        return dict(rows.tuples().all())


async def test_load_publish_and_refuse(database: Database, settings: Settings, tmp_path: Path) -> None:
    first = await run_portal(settings, tmp_path, "checklists", "load")
    assert first.returncode == 0, first.stderr
    assert "WARD v1" in first.stdout
    again = await run_portal(settings, tmp_path, "checklists", "load")
    assert again.returncode == 0 and "published" not in again.stdout and "unchanged  WARD v1" in again.stdout

    # A checklist of our own (the database is shared by the session: the bundled ones stay as they are).
    code = "T" + "".join(chr(65 + int(c, 16)) for c in uuid.uuid4().hex[:8])  # letters only, like WARD
    doc = yaml.safe_load((CATALOGUE_DIR / "warden-spot-check.yaml").read_text(encoding="utf-8"))
    doc["code"] = code
    for n, item in enumerate(doc["items"], start=1):
        item["code"] = f"{code}-{n:02d}"
    for version in (1, 2):
        doc["version"] = version
        doc["items"][0]["text"]["zh"] += f"（第{version}版）"
        path = tmp_path / f"{code}-v{version}.yaml"
        path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
        published = await run_portal(settings, tmp_path, "checklists", "load", str(path))
        assert published.returncode == 0 and f"published  {code} v{version}" in published.stdout
    assert await _versions(database, code) == {1: ChecklistStatus.SUPERSEDED, 2: ChecklistStatus.PUBLISHED}

    doc["items"][0]["text"]["zh"] += "（偷偷改过）"
    changed = tmp_path / f"{code}-v2-changed.yaml"
    changed.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    refused = await run_portal(settings, tmp_path, "checklists", "load", str(changed))
    assert refused.returncode == 1 and "a change needs a new version" in refused.stderr
    assert await _versions(database, code) == {1: ChecklistStatus.SUPERSEDED, 2: ChecklistStatus.PUBLISHED}
