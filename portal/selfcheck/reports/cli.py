"""``portal verify-report ID``: re-checks a monthly report's signature against the audit chain and the
report as stored now (the same check as the public verification page: ``signing/verification.py``).

Runs under the explicit, logged system scope (an operator's tool, like ``portal audit verify``). Prints the
tenant, the period, the signer, the registered passkey's fingerprint and registration time, the hashes
(signed, fixed at submission, now) and each check; a failed check is named with its reason in the
configured default language. Exit status: 0 when every check passes, 1 when one fails, 2 when there is no
such report or it is not signed.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from dataclasses import dataclass

import click

from portal.config import Settings, load_settings_or_exit


@dataclass(frozen=True)
class Outcome:
    lines: list[str]
    status: int  # the exit status


async def check_report(settings: Settings, selfcheck_id: uuid.UUID) -> Outcome | None:
    from portal.core.db import Database
    from portal.core.i18n import _, using_locale
    from portal.core.tenancy import Scope
    from portal.selfcheck.reports import services as reports
    from portal.selfcheck.signing.verification import FAILURES, Check

    db = Database(settings)
    try:
        async with db.session(Scope.system("verify-report")) as session:
            check = await reports.verify_report(session, selfcheck_id)
    finally:
        await db.dispose()
    if check is None:
        return None
    head = [
        f"report:   {check.selfcheck.id}",
        f"tenant:   {check.tenant.code} {check.tenant.name_zh}",
        f"period:   {check.selfcheck.period}",
    ]
    v = check.verification
    if v is None:
        return Outcome([*head, "NOT SIGNED"], 2)
    registered = v.key_registered_at.isoformat() if v.key_registered_at else "-"
    lines = [
        *head,
        f"signer:   {v.signer_name}",
        f"signed:   {v.signed_at.isoformat()}",
        f"passkey:  {v.key_sha256 or '-'} (registered {registered})",
        f"signed sha256:  {v.signed_sha256}",
        f"fixed sha256:   {v.fixed_sha256 or '-'} (at submission, from the audit chain)",
        f"current sha256: {v.current_sha256}",
    ]
    with using_locale(settings.default_locale):
        for c in Check:
            lines.append(f"check {c.value:<12} " + (f"FAILED: {_(FAILURES[c])}" if c in v.failures else "ok"))
    if v.problem:
        lines.append(f"signature: {v.problem}")
    lines.append("OK" if v.ok else "FAILED: " + ", ".join(c.value for c in v.failures))
    return Outcome(lines, 0 if v.ok else 1)


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
    outcome = asyncio.run(check_report(settings, selfcheck_id))
    if outcome is None:
        click.echo(f"no report with id {report_id}", err=True)
        sys.exit(2)
    for line in outcome.lines:
        click.echo(line)
    sys.exit(outcome.status)
