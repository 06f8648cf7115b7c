"""``portal serve | worker | migrate | demo | check | audit verify | verify-report | checklists load``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import click

from portal.audit.cli import audit
from portal.config import Settings, load_settings_or_exit
from portal.selfcheck.checklists.cli import checklists
from portal.selfcheck.reports.cli import verify_report

_settings = load_settings_or_exit


@click.group()
def main() -> None:
    """Fire-safety self-compliance portal."""
    from portal import registry

    registry.install()  # every command may touch the database, run a job or emit an outbox row


main.add_command(audit)
main.add_command(verify_report)
main.add_command(checklists)


def proxy_options(settings: Settings) -> tuple[bool, str]:
    """uvicorn's forwarded-header options from ``PORTAL_TRUSTED_PROXIES``. uvicorn's own default believes
    X-Forwarded-For from 127.0.0.1, so a visitor on the same machine (or behind a proxy that passes the
    header through) could rotate it and sidestep every per-address limit: believe only the listed proxies,
    and none when the list is empty."""
    return bool(settings.trusted_proxies), settings.trusted_proxies  # (proxy_headers, forwarded_allow_ips)


@main.command()
# uvicorn by default: in the same runs of bench/tenancy.py it served the lightest signed-in request 28-67 %
# more than granian, and the dashboard about as much or more (granian wins only on a route that awaits
# nothing).
@click.option("--server", type=click.Choice(["uvicorn", "granian"]), default="uvicorn", show_default=True)
@click.option("--workers", default=1, show_default=True, help="Web processes (production shape only).")
def serve(server: str, workers: int) -> None:
    """Run the web portal (and, with the in-process broker, the worker threads)."""
    from portal.core.logging import configure as configure_logging

    settings = _settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if settings.demo and not settings.on_loopback:
        click.echo(
            f"refusing demo mode on {settings.host}: demo sign-in is only for a loopback address "
            "(set PORTAL_HOST=127.0.0.1 or turn PORTAL_DEMO off)",
            err=True,
        )
        sys.exit(2)
    if settings.broker_url.startswith("inprocess") and workers > 1:
        click.echo(
            "the in-process broker runs inside one web process: use --workers 1 or a Redis/RabbitMQ broker",
            err=True,
        )
        sys.exit(2)
    problems = asyncio.run(_problems(settings))
    if problems:
        for line in problems:
            click.echo(f"cannot start: {line}", err=True)
        sys.exit(1)
    click.echo(f"portal listening on {settings.base_url}")
    if settings.demo:
        from portal.demo.guide import sign_in_guide

        click.echo(
            f"\nDemo sign-in (this computer only): open {settings.base_url}/signin and click a person, e.g."
        )
        for line in asyncio.run(sign_in_guide(settings)):
            click.echo(line)
        click.echo("Press Ctrl+C to stop.\n")
    _stop_cleanly_on(signal.SIGINT, signal.SIGTERM)
    if server == "uvicorn":
        import uvicorn

        proxy_headers, forwarded_allow_ips = proxy_options(settings)
        uvicorn.run(
            "portal.asgi:app",
            host=settings.host,
            port=settings.port,
            workers=workers,
            log_level="warning",
            access_log=False,
            proxy_headers=proxy_headers,
            forwarded_allow_ips=forwarded_allow_ips,
        )
    else:
        from granian import Granian
        from granian.constants import Interfaces

        Granian(
            "portal.asgi:app",
            address=settings.host,
            port=settings.port,
            interface=Interfaces.ASGI,
            workers=workers,
            log_access=False,
        ).serve()


def _stop_cleanly_on(*signals: signal.Signals) -> None:
    """Ctrl+C or a service manager's SIGTERM is the normal way to stop the server: exit 0, not by the
    signal (which ``make run`` reports as "Error 130/143"). The servers handle the signal first (a
    graceful shutdown), then re-raise it to the handler they found, this one."""

    def stop(_signum: int, _frame: object) -> None:
        raise SystemExit(0)

    for sig in signals:
        signal.signal(sig, stop)


@main.command()
@click.option("--processes", default=1, show_default=True)
@click.option("--threads", default=4, show_default=True)
@click.option("--scheduler/--no-scheduler", default=True, show_default=True)
def worker(processes: int, threads: int, scheduler: bool) -> None:
    """Run dramatiq worker processes (Redis or RabbitMQ broker) and the periodic scheduler."""
    settings = _settings()
    if settings.broker_url.startswith("inprocess"):
        click.echo(
            "PORTAL_BROKER_URL is inprocess://: the worker runs inside `portal serve`; "
            "set a redis:// or amqp:// broker for separate workers",
            err=True,
        )
        sys.exit(2)
    if scheduler:
        os.environ["PORTAL_WORKER_SCHEDULER"] = "1"
    from worker.environment import worker_environ

    # exec, not dramatiq's main() in this process: the allocator settings in worker_environ (one malloc
    # arena) are read by glibc when a process starts, and dramatiq forks its workers from this one.
    argv = [sys.executable, "-m", "dramatiq", "worker.main", "--processes", str(processes)]
    argv += ["--threads", str(threads)]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, argv, worker_environ(os.environ))  # noqa: S606 (our interpreter, fixed argv)


@main.command()
@click.option("--revision", default="head", show_default=True)
def migrate(revision: str) -> None:
    """Apply database migrations (as the table owner: PORTAL_MIGRATION_DATABASE_URL)."""
    from portal.core.migrate import upgrade

    settings = _settings()
    before, after = upgrade(settings.migration_database_url or settings.database_url, revision)
    if before is None:
        click.echo(f"database created (schema revision {after})")
    elif before != after:
        click.echo(f"database migrated from revision {before} to {after}")
    else:
        click.echo(f"database already at revision {after}; nothing to do")


@main.command()
@click.option("--if-empty", is_flag=True, help="Seed only when the database has no tenants yet.")
def demo(if_empty: bool) -> None:
    """Seed the demo city (示例市)."""
    from portal.core.logging import configure as configure_logging
    from portal.demo.seed import seed_demo

    settings = _settings()
    # Seeding runs the cycle's jobs hundreds of times: their routine lines would bury the one line that
    # says what was seeded. Warnings still show; PORTAL_LOG_LEVEL=DEBUG shows everything.
    quiet = settings.log_level.upper() not in ("DEBUG",)
    configure_logging("WARNING" if quiet else settings.log_level, json=settings.log_json)
    result = asyncio.run(seed_demo(settings, if_empty=if_empty))
    click.echo(result)


@main.command()
def check() -> None:
    """Verify the configuration and that every configured service answers."""
    settings = _settings()
    problems = asyncio.run(_problems(settings))
    if problems:
        for line in problems:
            click.echo(f"FAIL {line}", err=True)
        sys.exit(1)
    click.echo("configuration ok; database, broker and storage answer")


async def _problems(settings: Settings) -> list[str]:
    from types import SimpleNamespace

    from portal.core.db import Database
    from portal.core.storage import open_storage
    from portal.site.health import check_services
    from worker.broker import make_broker

    db = Database(settings)
    try:
        broker = make_broker(settings.broker_url)
        storage = open_storage(
            settings.storage_url,
            secret=settings.signing_key().decode(),
            public_base_url=settings.base_url,
            s3_endpoint=settings.s3_endpoint_url,
            s3_region=settings.s3_region,
            s3_access_key=settings.s3_access_key,
            s3_secret_key=settings.s3_secret_key,
        )
        if settings.storage_url.startswith("file://"):
            await storage.ensure_ready()
        results = await check_services(SimpleNamespace(db=db, broker=broker, storage=storage))
    finally:
        await db.dispose()
    labels = {
        "database": "PORTAL_DATABASE_URL",
        "broker": "PORTAL_BROKER_URL",
        "storage": "PORTAL_STORAGE_URL",
    }
    return [f"{name} ({labels[name]}): {value}" for name, value in results.items() if value != "ok"]
