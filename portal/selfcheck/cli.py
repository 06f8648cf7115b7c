"""``portal verify-report ID`` and ``portal checklists load``.

``verify-report`` re-checks a monthly report's signature against the report as stored now.

Runs under the explicit, logged system scope (an operator's tool, like ``portal audit verify``). Prints
the tenant, the period, the signer and both fingerprints. Exit status: 0 when the signature verifies and
the report is unchanged, 1 when it does not verify or the report changed, 2 when there is no such report
or it is not signed.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import click

from portal.config import Settings, load_settings_or_exit


async def check_report(settings: Settings, selfcheck_id: uuid.UUID) -> list[str] | int:
    from portal.core.db import Database
    from portal.core.tenancy import Scope
    from portal.selfcheck import reports

    db = Database(settings)
    try:
        async with db.session(Scope.system("verify-report")) as session:
            check = await reports.verify_report(session, selfcheck_id)
    finally:
        await db.dispose()
    if check is None:
        return 2
    head = [
        f"report:   {check.selfcheck.id}",
        f"tenant:   {check.tenant.code} {check.tenant.name_zh}",
        f"period:   {check.selfcheck.period}",
    ]
    v = check.verification
    if v is None:
        return [*head, "NOT SIGNED"]
    return [
        *head,
        f"signer:   {v.signer_name}",
        f"signed:   {v.signed_at.isoformat()}",
        f"signed sha256:  {v.signed_sha256}",
        f"current sha256: {v.current_sha256}",
        "signature: " + ("valid" if v.signature_valid else f"DOES NOT VERIFY ({v.problem})"),
        "report:    " + ("unchanged since signing" if v.unchanged else "CHANGED SINCE SIGNING"),
        "OK" if v.ok else "FAILED",
    ]


@click.command("verify-report")
@click.argument("report_id")
def verify_report(report_id: str) -> None:
    """Re-verify a monthly report's signature (REPORT_ID: the self-check's id); exit 1 if it fails."""
    try:
        selfcheck_id = uuid.UUID(report_id)
    except ValueError:
        click.echo(f"not a report id: {report_id!r}", err=True)
        sys.exit(2)
    settings = load_settings_or_exit()
    from portal.core.logging import configure as configure_logging

    configure_logging(settings.log_level, json=settings.log_json)  # logs to stderr; the result to stdout
    result = asyncio.run(check_report(settings, selfcheck_id))
    if result == 2:
        click.echo(f"no report with id {report_id}", err=True)
        sys.exit(2)
    assert isinstance(result, list)
    for line in result:
        click.echo(line)
    if result[-1] == "NOT SIGNED":
        sys.exit(2)
    sys.exit(0 if result[-1] == "OK" else 1)


@click.group()
def checklists() -> None:
    """The checklist catalogue (versioned YAML data)."""


async def _load(settings: Settings, paths: list[Path] | None) -> list[str]:
    from portal.core.db import Database
    from portal.core.tenancy import Scope
    from portal.selfcheck import catalogue

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
    from portal.selfcheck.catalogue import CatalogueError

    configure_logging(settings.log_level, json=settings.log_json)
    try:
        lines = asyncio.run(_load(settings, list(paths) or None))
    except CatalogueError as exc:
        click.echo(f"refused: {exc}", err=True)
        sys.exit(1)
    for line in lines:
        click.echo(line)
