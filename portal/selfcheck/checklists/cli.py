"""``portal checklists load``: publishes checklist versions (the bundled catalogue by default)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from portal.config import Settings, load_settings_or_exit


@click.group()
def checklists() -> None:
    """The checklist catalogue (versioned YAML data)."""


async def _load(settings: Settings, paths: list[Path] | None) -> list[str]:
    from portal.core.db import Database
    from portal.core.tenancy import Scope
    from portal.selfcheck.checklists import services as catalogue

    db = Database(settings)
    try:
        async with db.session(Scope.system("checklists load")) as session:
            results = await catalogue.load_catalogue(session, paths)
    finally:
        await db.dispose()
    return [f"{r.outcome:<10} {r.code} v{r.version}" for r in results]


@checklists.command("load")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_checklists(paths: tuple[Path, ...]) -> None:
    """Publish checklist files (default: the bundled catalogue). A changed text needs a new version;
    running self-checks keep the version they started with. All files are checked before any is loaded."""
    settings = load_settings_or_exit()
    from portal.core.logging import configure as configure_logging
    from portal.selfcheck.checklists.services import CatalogueError

    configure_logging(settings.log_level, json=settings.log_json)
    try:
        lines = asyncio.run(_load(settings, list(paths) or None))
    except CatalogueError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)
