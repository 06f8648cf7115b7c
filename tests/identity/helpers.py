"""Helpers of the passkey and invitation tests: JSON posts with the CSRF header, passkeys made through the
real services with the software authenticator, and the Chinese text a page shows for a message id."""

from __future__ import annotations

import html
import json
import uuid
from typing import Any

from httpx import Response
from litestar.testing import AsyncTestClient

from portal.config import Settings
from portal.core import i18n
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo.softauthn import SoftAuthenticator
from portal.identity import passkeys
from tests.fixtures.web import csrf_token


def zh(message: str, **params: object) -> str:
    """What a Chinese page shows for ``message``: the zh_CN catalogue's text (the English id until the
    catalogue has it), so the tests read the same before and after the translations are merged."""
    text = i18n.translations("zh_CN").gettext(message)
    return text % params if params else text


def page_text(response: Response) -> str:
    return html.unescape(response.text)


async def post_json(client: AsyncTestClient, path: str, body: dict[str, Any] | None = None) -> Response:
    token = await csrf_token(client)
    return await client.post(
        path,
        content=json.dumps(body or {}),
        headers={"x-csrftoken": token, "accept": "application/json", "content-type": "application/json"},
    )


async def give_passkey(
    database: Database, settings: Settings, user_id: uuid.UUID, soft: SoftAuthenticator, name: str = "phone"
) -> uuid.UUID:
    """Register one passkey of ``soft`` for the user through the services; returns the passkey id."""
    options, ceremony = passkeys.registration_options(
        settings, user_id=user_id, user_name="x", display_name="x", rp_name="portal"
    )
    credential = passkeys.verify_registration(settings, ceremony, soft.create(options))
    async with database.session(Scope.system("test: passkey")) as s:
        passkey = await passkeys.add_passkey(s, credential, name=name)
    return passkey.id


async def session_of(client: AsyncTestClient, database: Database) -> dict[str, Any]:
    """The server-side session of the test client, read from the session table (the embedded shape's
    store) through the test's own engine: the app's engine lives on the test client's event loop."""
    from portal.identity.session_store import DatabaseStore

    sid = client.cookies.get("portal_session")
    assert sid and sid != "null", "no session cookie"
    raw = await DatabaseStore(database).get(sid)
    assert raw is not None, "no such session in the store"
    data: dict[str, Any] = json.loads(raw)
    return data
