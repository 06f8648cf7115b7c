"""The JSON API keeps its OpenAPI document's word: schemathesis, with every check it has (what
``schemathesis run --checks all`` runs, in all its phases), over every operation of
``/api/docs/openapi.json``, against the app in process, once as an insurer's API key and once as a
signed-in manager. Zero findings; a finding is fixed in the app (or in what the document says), never by
leaving a check out.

Bounded and deterministic: a few examples per operation (``MAX_EXAMPLES``), a fixed seed, derandomised,
on PostgreSQL only (the production shape; the answers do not depend on the database kind).
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
import schemathesis
from litestar.testing import AsyncTestClient
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events

from portal.app import create_app
from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.identity import api_keys
from tests.fixtures.factories import World
from tests.fixtures.web import csrf_token, sign_in

MAX_EXAMPLES = 25
MAX_SEQUENCES = 8
SEED = 9457

pytestmark = pytest.mark.parametrize("db_kind", ["postgres"], indirect=True)


def run_schemathesis(settings: Settings, auth: dict[str, dict[str, str]]) -> list[str]:
    """Every finding of a whole run, one line each (empty: none). ``auth`` gives a value to some of the
    document's security schemes (``session``, ``apiKey``…), so the auth checks know what to take away."""
    config = SchemathesisConfig.from_dict(
        {
            "seed": SEED,
            "checks": {"enabled": True},  # all of them
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            # Sequences of calls along the links schemathesis infers (a listed tenant, then that tenant).
            "phases": {"stateful": {"generation": {"max-examples": MAX_SEQUENCES}}},
            "auth": {"openapi": auth},
        }
    )
    # Another instance of the app on the same database: sessions and keys live in the database.
    app = create_app(settings)
    schema = schemathesis.openapi.from_asgi("/api/docs/openapi.json", app, config=config)
    findings: list[str] = []
    scenarios = 0
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            scenarios += 1
            findings += _failures(event)
        elif isinstance(event, events.NonFatalError | events.FatalError):
            findings.append(f"error: {event.info.title}: {event.info.message}")
    assert scenarios >= 5, "schemathesis ran fewer scenarios than the API has operations"
    return findings


def _failures(event: events.ScenarioFinished) -> list[str]:
    if event.status is Status.SUCCESS or event.status is Status.SKIP:
        return []
    found = []
    for checks in event.recorder.checks.values():
        for check in checks:
            if check.failure_info is not None:
                failure = check.failure_info.failure
                found.append(
                    f"{event.recorder.label} [{check.name}] {failure.title}: {failure.message}\n"
                    f"    {check.failure_info.code_sample}"
                )
    return found


@pytest_asyncio.fixture(loop_scope="session")
async def insurer_key(database: Database, world: World) -> str:
    assert world.insurer is not None
    async with database.session(Scope.system("test")) as s:
        made = await api_keys.create_key(s, insurer_id=world.insurer.id, name="contract", created_by=None)
    return made.plaintext


async def test_as_an_insurer_key(settings: Settings, insurer_key: str) -> None:
    findings = run_schemathesis(settings, {"apiKey": {"bearer": insurer_key}})
    assert findings == [], "\n".join(findings)


async def test_as_a_signed_in_manager(settings: Settings, client: AsyncTestClient, world: World) -> None:
    assert (await sign_in(client, world.users["manager_a"].login)).status_code == 303
    token = await csrf_token(client)
    auth: dict[str, Any] = {
        "session": {"api_key": str(client.cookies["portal_session"])},
        "csrfCookie": {"api_key": token},
        "csrfHeader": {"api_key": token},
    }
    findings = run_schemathesis(settings, auth)
    assert findings == [], "\n".join(findings)
