"""Health of every configured service: database, broker, object storage."""

from __future__ import annotations

import asyncio
from typing import Any

from litestar import Request, get
from litestar.response import Response
from sqlalchemy import text

from portal.identity import access


async def check_services(state: Any) -> dict[str, str]:
    """``{"database": "ok", "broker": "ok", "storage": "ok"}`` or an error string per failing part."""
    results: dict[str, str] = {}

    async def database() -> None:
        async with state.db.engine.connect() as conn:
            await conn.execute(text("select 1"))

    async def broker() -> None:
        from worker.broker import ping

        await asyncio.to_thread(ping, state.broker)

    async def storage() -> None:
        await state.storage.check()

    for name, probe in (("database", database), ("broker", broker), ("storage", storage)):
        try:
            await asyncio.wait_for(probe(), timeout=5)
            results[name] = "ok"
        except Exception as exc:  # every failure is reported, none is raised
            results[name] = f"error: {type(exc).__name__}: {str(exc)[:200]}"
    return results


@get(
    "/health",
    include_in_schema=True,
    tags=["ops"],
    summary="Database, broker and storage status",
    opt=access.public(),
)
async def health(request: Request) -> Response[dict[str, Any]]:
    results = await check_services(request.app.state)
    ok = all(v == "ok" for v in results.values())
    return Response({"status": "ok" if ok else "degraded", **results}, status_code=200 if ok else 503)
