"""``portal audit verify``: recompute the hash chains and name the first broken link of each broken chain.

Runs with the application's database login (``PORTAL_DATABASE_URL``) under the explicit, logged system
scope, like the jobs do. Exit status: 0 when every chain checked is intact, 1 when one is broken, 2 for a
usage or configuration problem.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass

import click

from portal.config import Settings, load_settings_or_exit


@dataclass(frozen=True)
class ChainReport:
    chain: str
    tenant_code: str
    entries: int
    broken_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None

    def lines(self) -> list[str]:
        name = self.chain + (f" ({self.tenant_code})" if self.tenant_code else "")
        plural = "entry" if self.entries == 1 else "entries"
        if self.ok:
            return [f"ok      {name}: {self.entries} {plural}"]
        return [
            f"BROKEN  {name}: {self.entries} {plural}",
            f"  first broken link: chain={self.chain} seq={self.broken_seq} reason={self.reason}",
        ]


class UnknownTenant(LookupError):
    pass


async def verify_chains(settings: Settings, *, tenant: str | None, platform: bool) -> list[ChainReport]:
    """Verify the chains selected (all of them when neither ``tenant`` nor ``platform`` is given)."""
    from portal.audit import queries
    from portal.audit import services as audit
    from portal.core.db import Database
    from portal.core.tenancy import Scope
    from portal.models.audit import PLATFORM_CHAIN

    db = Database(settings)
    try:
        breaks: list[audit.Break] = []
        selected: list[str] | None = None
        if tenant is not None or platform:
            selected = []
            if tenant is not None:
                async with db.session(Scope.system("audit verify: resolve tenant")) as session:
                    found = await queries.resolve_tenant(session, tenant)
                if found is None:
                    raise UnknownTenant(tenant)
                selected.append(str(found[0]))
                breaks += await audit.verify(db, tenant_id=found[0])
            if platform:
                selected.append(PLATFORM_CHAIN)
                breaks += await audit.verify(db, platform=True)
        else:
            breaks = await audit.verify(db)
        async with db.session(Scope.system("audit verify: chain summary")) as session:
            summaries = await queries.chain_summaries(session, selected)
    finally:
        await db.dispose()
    first = {b.chain: b for b in breaks}
    reports = []
    for s in summaries:
        b = first.get(s.chain)
        reports.append(
            ChainReport(s.chain, s.tenant_code, s.entries, b.seq if b else None, b.reason if b else "")
        )
    # A break in a chain the summary did not list (it cannot happen today) is still reported.
    listed = {s.chain for s in summaries}
    reports += [ChainReport(b.chain, "", 0, b.seq, b.reason) for b in breaks if b.chain not in listed]
    return reports


_settings = load_settings_or_exit


@click.group()
def audit() -> None:
    """The audit log: append-only, one hash chain per tenant plus the platform chain."""


@audit.command()
@click.option("--tenant", "tenant", metavar="CODE_OR_ID", help="Only this tenant's chain (its code or id).")
@click.option("--platform", is_flag=True, help="Only the platform chain (with --tenant: both).")
def verify(tenant: str | None, platform: bool) -> None:
    """Recompute the hash chains (all by default); exit 1 if any link is broken."""
    settings = _settings()
    from portal.core.logging import configure as configure_logging

    configure_logging(settings.log_level, json=settings.log_json)  # logs to stderr; the report to stdout
    try:
        reports = asyncio.run(verify_chains(settings, tenant=tenant, platform=platform))
    except UnknownTenant:
        click.echo(f"no tenant with code or id {tenant!r}", err=True)
        sys.exit(2)
    for report in reports:
        for line in report.lines():
            click.echo(line)
    broken = sum(1 for r in reports if not r.ok)
    if not reports:
        click.echo("no audit chains yet")
    else:
        noun = "chain" if len(reports) == 1 else "chains"
        click.echo(f"checked {len(reports)} {noun}: {len(reports) - broken} intact, {broken} broken")
    sys.exit(1 if broken else 0)
