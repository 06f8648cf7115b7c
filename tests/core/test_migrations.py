"""Alembic migrations run on both databases, go down and up again, and match the models exactly."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from portal.config import Settings
from portal.core.migrate import downgrade, upgrade
from portal.models import metadata
from tests.fixtures.databases import _psql


async def _diff(url: str) -> list:  # type: ignore[type-arg]
    engine = create_async_engine(url, poolclass=NullPool)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            # SQLite reflects UUID columns as NUMERIC: compare types only where they are real (PostgreSQL).
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": sync.dialect.name == "postgresql"}),
                metadata,
            )
        )
    await engine.dispose()
    return diff


def test_models_match_the_migrations(settings: Settings) -> None:
    url = settings.migration_database_url or settings.database_url
    assert asyncio.run(_diff(url)) == []


def test_sqlite_down_and_up(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    upgrade(url)
    downgrade(url, "base")
    upgrade(url)
    assert asyncio.run(_diff(url)) == []


def test_postgres_down_and_up(pg_database: tuple[str, str]) -> None:
    name = f"portal_mig_{uuid.uuid4().hex[:8]}"
    _psql(f'CREATE DATABASE "{name}" OWNER portal_owner')
    try:
        url = f"postgresql+asyncpg://portal_owner@127.0.0.1:5432/{name}"
        upgrade(url)
        downgrade(url, "base")
        upgrade(url)
        assert asyncio.run(_diff(url)) == []
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
