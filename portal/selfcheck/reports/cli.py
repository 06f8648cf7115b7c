"""``portal verify-report ID``: re-checks a monthly report's signature against the report as stored now.

Runs under the explicit, logged system scope (an operator's tool, like ``portal audit verify``). Prints
the tenant, the period, the signer and both fingerprints. Exit status: 0 when the signature verifies and
the report is unchanged, 1 when it does not verify or the report changed, 2 when there is no such report
or it is not signed.
"""

from __future__ import annotations

import asyncio
import sys
import uuid

import click

from portal.config import Settings, load_settings_or_exit


async def check_report(settings: Settings, selfcheck_id: uuid.UUID) -> list[str] | int:
    from portal.core.db import Database
    from portal.core.tenancy import Scope
    from portal.selfcheck.reports import services as reports

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
