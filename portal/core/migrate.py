"""Run Alembic programmatically (``portal migrate``) so no alembic.ini has to sit in the working directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(url: str) -> str | None:
    """The revision the database is at; None for a database without the portal's tables yet."""

    async def read() -> str | None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())
        finally:
            await engine.dispose()

    return asyncio.run(read())


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Apply migrations up to ``revision``; the revisions before and after, to say what happened."""
    if url.startswith("sqlite"):
        from portal.core.db import _ensure_sqlite_dir

        _ensure_sqlite_dir(url)
    before = current_revision(url)
    command.upgrade(alembic_config(url), revision)
    return before, current_revision(url)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
