"""The real app on each database and each storage backend: ``file://`` (the portal serves the signed POST
and GET itself) and S3 (SeaweedFS over HTTP). Uploads are multipart POSTs built like a browser's FormData."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from portal.app import create_app
from portal.config import Settings
from portal.core import outbox
from portal.core.db import Database
from portal.core.outbox import OutboxMessage
from portal.core.storage import ObjectStorage
from portal.core.tenancy import Scope
from portal.evidence.services import PROCESS_TOPIC
from portal.evidence.store import use_storage
from tests.fixtures.web import csrf_token, sign_in

# The bucket the seaweedfs fixture creates for its readiness probe. Each bucket is a SeaweedFS collection that
# takes volume slots of its own, and the test server has only a few: a bucket of our own made the next one
# (tests/core/test_storage.py's) fail with "no free volumes left". Keys are unique per test tenant anyway.
BUCKET = "fixture-probe"


@dataclass
class Portal:
    kind: str
    app: Litestar
    client: AsyncTestClient
    storage_http: Any  # where presigned URLs go: the app itself (file://) or SeaweedFS (s3://)
    settings: Settings
    database: Database

    @property
    def storage(self) -> ObjectStorage:
        storage: ObjectStorage = self.app.state.storage
        return storage

    async def sign_in(self, login: str, ctx: str = "") -> None:
        self.client.cookies.clear()
        response = await sign_in(self.client, login, ctx)
        assert response.status_code in (200, 303), response.text

    async def post_json(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        token = await csrf_token(self.client)
        return await self.client.post(
            path, json=body or {}, headers={"x-csrftoken": token, "accept": "application/json"}
        )

    async def slot(
        self,
        owner_id: uuid.UUID,
        size: int,
        *,
        content_type: str = "image/jpeg",
        client_id: uuid.UUID | None = None,
        owner_type: str = "tenant",
    ) -> httpx.Response:
        return await self.post_json(
            "/evidence/slots",
            {
                "client_id": str(client_id or uuid.uuid4()),
                "owner_type": owner_type,
                "owner_id": str(owner_id),
                "content_type": content_type,
                "size": size,
                "filename": "现场照片.jpg",
            },
        )

    async def upload(
        self, upload: dict[str, Any], data: bytes, part_type: str = "image/jpeg"
    ) -> httpx.Response:
        # Fields first, the file part last, as a browser's FormData built in that order.
        files = {"file": ("photo.jpg", data, part_type)}
        return await self.storage_http.post(upload["url"], data=upload["fields"], files=files)

    async def complete(self, client_id: uuid.UUID | str) -> httpx.Response:
        return await self.post_json(f"/evidence/slots/{client_id}/complete")

    async def add(
        self, owner_id: uuid.UUID, data: bytes, *, content_type: str = "image/jpeg"
    ) -> tuple[uuid.UUID, httpx.Response]:
        """Slot → upload → complete; returns the client id and the completion answer."""
        client_id = uuid.uuid4()
        slot = await self.slot(owner_id, len(data), content_type=content_type, client_id=client_id)
        assert slot.status_code == 200, slot.text
        up = await self.upload(slot.json()["upload"], data, content_type)
        assert up.status_code in (200, 201, 204), up.text
        return client_id, await self.complete(client_id)

    async def fetch(self, path: str) -> httpx.Response:
        """Follow the portal's 303 to the signed storage URL, as a browser would."""
        first = await self.client.get(path)
        if first.status_code != 303:
            return first
        assert first.headers["cache-control"] == "no-store"
        return await self.storage_http.get(first.headers["location"])

    async def process_pending(self, tenant_id: uuid.UUID) -> list[str]:
        """Run the evidence outbox rows of this tenant through the real handler (as the worker does)."""
        async with self.database.session(Scope.system("test")) as session:
            ids = (
                await session.execute(
                    select(OutboxMessage.id).where(
                        OutboxMessage.tenant_id == tenant_id,
                        OutboxMessage.topic == PROCESS_TOPIC,
                        OutboxMessage.status == outbox.PENDING,
                    )
                )
            ).scalars()
            pending = list(ids)
        return [await outbox.process(self.database, i) for i in pending]


@pytest.fixture(params=["file", "s3"])
def storage_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def portal_settings(settings: Settings, kind: str, request: pytest.FixtureRequest, **extra: Any) -> Settings:
    update: dict[str, Any] = {"demo": True, **extra}
    if kind == "s3":
        server = request.getfixturevalue("seaweedfs")
        update |= {
            "storage_url": f"s3://{BUCKET}",
            "s3_endpoint_url": server.endpoint_url,
            "s3_access_key": server.access_key,
            "s3_secret_key": server.secret_key,
            "s3_region": server.region,
        }
    return settings.model_copy(update=update)


@pytest_asyncio.fixture(loop_scope="session")
async def portal(
    settings: Settings, database: Database, storage_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[Portal]:
    marker = request.node.get_closest_marker("portal_settings")
    app_settings = portal_settings(settings, storage_kind, request, **(marker.kwargs if marker else {}))
    app = create_app(app_settings)
    async with AsyncTestClient(app=app, base_url="http://localhost.local") as client:
        client.follow_redirects = False
        use_storage(app.state.storage)  # the outbox handler uses this app's storage
        # No hand-off to the app's embedded worker: tests run the handler themselves, deterministically.
        outbox.set_dispatcher(None)
        if storage_kind == "s3":
            async with httpx.AsyncClient(timeout=30) as http:
                yield Portal(storage_kind, app, client, http, app_settings, database)
        else:
            yield Portal(storage_kind, app, client, client, app_settings, database)
    use_storage(None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "portal_settings(**kw): settings overrides for the evidence app")
