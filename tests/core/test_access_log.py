"""One log line per request, with the status the visitor got: a refusal before the handler (CSRF 403, a
rate limit's 429) is logged as what it answered, not as an error."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from portal.config import Settings
from portal.core import web
from tests.fixtures.web import limited_client


class Lines:
    """Stands in for the access logger (a structlog logger): keeps what would be written."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.lines.append({"event": event, **fields})

    def statuses(self, path: str) -> list[Any]:
        return [e["status"] for e in self.lines if e["event"] == "request" and e["path"] == path]


@pytest.fixture
def access_lines(monkeypatch: pytest.MonkeyPatch) -> Lines:
    lines = Lines()
    monkeypatch.setattr(web, "access_log", lines)
    return lines


async def test_a_csrf_refusal_is_logged_as_403(client: AsyncTestClient, access_lines: Lines) -> None:
    refused = await client.post("/signin/demo", data={"login": "nobody"})
    assert refused.status_code == 403
    assert access_lines.statuses("/signin/demo") == [403]


async def test_a_rate_limited_request_is_logged_as_429(settings: Settings, access_lines: Lines) -> None:
    path = "/board/00000000-0000-0000-0000-000000000000"
    async with limited_client(settings, rate_limit_public_per_minute=1) as client:
        first = await client.get(path)
        second = await client.get(path)
    assert (first.status_code, second.status_code) == (404, 429)
    assert access_lines.statuses(path) == [404, 429]
