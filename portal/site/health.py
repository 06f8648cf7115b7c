"""Health of every configured service: database, broker, object storage."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from msgspec import Meta
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


class Health(msgspec.Struct):
    status: Annotated[str, Meta(description="`ok`, or `degraded` when a service does not answer")]
    database: Annotated[str, Meta(description="`ok`, or `error: …`")]
    broker: Annotated[str, Meta(description="`ok`, or `error: …`")]
    storage: Annotated[str, Meta(description="`ok`, or `error: …`")]


@get(
    "/health",
    include_in_schema=True,
    tags=["ops"],
    summary="Database, broker and storage status",
    opt=access.public(),
    responses={
        503: ResponseSpec(Health, description="A service does not answer", generate_examples=False),
    },
)
async def health(request: Request) -> Response[Health]:
    results = await check_services(request.app.state)
    ok = all(v == "ok" for v in results.values())
    return Response(Health(status="ok" if ok else "degraded", **results), status_code=200 if ok else 503)
