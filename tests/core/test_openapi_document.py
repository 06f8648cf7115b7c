"""The OpenAPI document says how each operation is authenticated and every status it answers, derived
from the route's access declaration (``core/api_contract.py``); it holds the JSON API and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from portal.identity import sessions
from tests.fixtures.factories import World
from tests.fixtures.web import sign_in

JSON_API = {
    "/health": {"get"},
    "/api/v1/tenants": {"get"},
    "/api/v1/tenants/{tenant_id}": {"get"},
    "/evidence/slots": {"post"},
    "/evidence/slots/{client_id}/complete": {"post"},
}
PROBLEM = {"$ref": "#/components/schemas/ProblemDetail"}


@pytest.fixture
async def document(client: AsyncTestClient) -> dict[str, Any]:
    response = await client.get("/api/docs/openapi.json")
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def operation(document: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    op: dict[str, Any] = document["paths"][path][method]
    return op


async def test_the_json_api_and_nothing_else(document: dict[str, Any]) -> None:
    assert {path: set(ops) for path, ops in document["paths"].items()} == JSON_API
    for path, methods in JSON_API.items():
        for method in methods:
            success = operation(document, path, method)["responses"]["200"]
            assert set(success["content"]) == {"application/json"}, (path, method)


async def test_security_schemes_are_the_ones_the_app_uses(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"] == {
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": sessions.COOKIE,
            "description": "A person's session, started by passkey sign-in in the browser",
        },
        "apiKey": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "fsk_…",
            "description": "An insurer's API key (`Authorization: Bearer fsk_…`), made on the insurer portal "
            "and shown once; it reads only the tenants that consented",
        },
        "csrfCookie": {
            "type": "apiKey",
            "in": "cookie",
            "name": "portal_csrf",
            "description": "The CSRF cookie every page sets; with a session, a POST sends it back",
        },
        "csrfHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "x-csrftoken",
            "description": "The value of the `portal_csrf` cookie, repeated in this header on a POST",
        },
    }


async def test_each_operation_is_secured_as_its_route_is_declared(document: dict[str, Any]) -> None:
    people_or_keys = [{"session": []}, {"apiKey": []}]
    browser_post = [{"session": [], "csrfCookie": [], "csrfHeader": []}]
    assert operation(document, "/api/v1/tenants", "get")["security"] == people_or_keys
    assert operation(document, "/api/v1/tenants/{tenant_id}", "get")["security"] == people_or_keys
    assert operation(document, "/evidence/slots", "post")["security"] == browser_post
    assert operation(document, "/evidence/slots/{client_id}/complete", "post")["security"] == browser_post
    assert "security" not in operation(document, "/health", "get")  # public


async def test_every_status_it_answers_is_declared_as_problem_details(document: dict[str, Any]) -> None:
    expected = {
        ("/health", "get"): {"200", "429", "503"},
        ("/api/v1/tenants", "get"): {"200", "400", "401", "403"},
        ("/api/v1/tenants/{tenant_id}", "get"): {"200", "400", "401", "403", "404"},
        ("/evidence/slots", "post"): {"200", "400", "401", "403", "404", "413", "422"},
        ("/evidence/slots/{client_id}/complete", "post"): {"200", "400", "401", "403", "404", "409", "422"},
    }
    for (path, method), statuses in expected.items():
        responses = operation(document, path, method)["responses"]
        assert set(responses) == statuses, (path, method)
        for status in statuses - {"200", "503"}:
            assert responses[status]["content"] == {"application/problem+json": {"schema": PROBLEM}}


async def test_the_declared_problem_is_what_a_400_answers(
    client: AsyncTestClient, document: dict[str, Any], world: World
) -> None:
    schemas = document["components"]["schemas"]
    problem, field = schemas["ProblemDetail"], schemas["FieldProblem"]
    await sign_in(client, world.users["manager_a"].login)
    answer = await client.get("/api/v1/tenants/", params={"limit": "x"})
    assert answer.status_code == 400 and answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert set(problem["required"]) <= body.keys() <= set(problem["properties"])
    assert body["errors"] and all(entry.keys() == set(field["required"]) for entry in body["errors"])
