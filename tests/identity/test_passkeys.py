"""Passkeys on both databases: registration and sign-in with real (software) authenticator answers, each
refusal with its own translated message and no change, and a person's passkey page."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import cbor2
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo.softauthn import SoftAuthenticator
from portal.identity import passkeys
from portal.identity.ceremonies import Ceremony
from portal.identity.passkey_routes import MESSAGES
from portal.models.audit import AuditEntry
from portal.models.identity import Passkey, User
from portal.tenants import services as ts
from tests.fixtures.factories import World
from tests.fixtures.web import csrf_token, post_form, sign_in
from tests.identity.helpers import give_passkey, page_text, post_json, session_of, zh


async def _new_user(database: Database, name: str = "新人") -> User:
    async with database.session(Scope.system("test: user")) as s:
        return await ts.create_user(s, login=f"pk.{uuid.uuid4().hex[:10]}", display_name=name)


async def _passkey_rows(database: Database, user_id: uuid.UUID) -> list[Passkey]:
    async with database.session(Scope.system("test: read")) as s:
        rows = await s.execute(select(Passkey).where(Passkey.user_id == user_id).order_by(Passkey.created_at))
        return list(rows.scalars().all())


async def _audit_count(database: Database, action: str) -> int:
    async with database.session(Scope.system("test: audit")) as s:
        return int(
            (
                await s.execute(
                    select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
                )
            ).scalar_one()
        )


# -- services -----------------------------------------------------------------------------------------


async def test_register_then_sign_in_records_counter_and_use(database: Database, settings: Settings) -> None:
    user = await _new_user(database)
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    options, ceremony = passkeys.registration_options(
        settings, user_id=user.id, user_name=user.display_name, display_name=user.display_name, rp_name="门户"
    )
    # Discoverable, user-verified, for our RP ID and this person.
    assert options["rp"]["id"] == settings.rp_id
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["user"]["id"] == bytes_to_base64url(user.id.bytes)
    credential = passkeys.verify_registration(settings, ceremony, soft.create(options))
    assert credential.user_id == user.id and credential.sign_count == 0
    added_before = await _audit_count(database, "auth.passkey_added")
    async with database.session(None) as s:  # a signed-out visitor's session: no scope at all
        await passkeys.add_passkey(s, credential, name="  我的   手机 ")
    assert await _audit_count(database, "auth.passkey_added") == added_before + 1
    [row] = await _passkey_rows(database, user.id)
    assert row.name == "我的 手机" and row.last_used_at is None and row.transports == ["internal"]

    options, ceremony = passkeys.authentication_options(settings)
    assert options["allowCredentials"] == [] and options["userVerification"] == "required"
    async with database.session(None) as s:
        signed_in = await passkeys.authenticate(s, settings, ceremony, soft.get(options))
    assert signed_in.user.id == user.id
    [row] = await _passkey_rows(database, user.id)
    assert row.sign_count == 1 and row.last_used_at is not None


async def test_a_registration_records_the_credential_and_its_keys_fingerprint(
    database: Database, settings: Settings
) -> None:
    """What a signature is later checked against: the platform chain names the credential and the SHA-256
    of its COSE public key."""
    user = await _new_user(database)
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    passkey_id = await give_passkey(database, settings, user.id, soft)
    async with database.session(Scope.system("test: audit")) as s:
        entry = (
            await s.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "auth.passkey_added", AuditEntry.object_id == str(passkey_id)
                )
            )
        ).scalar_one()
        row = await s.get(Passkey, passkey_id)
    assert row is not None and entry.chain == "platform" and entry.detail["user_id"] == str(user.id)
    assert entry.detail["credential_id"] == bytes_to_base64url(soft.credentials[0].credential_id)
    assert entry.detail["key_sha256"] == hashlib.sha256(row.public_key).hexdigest()


def test_a_ceremony_is_single_purpose_and_expires(settings: Settings) -> None:
    _options, ceremony = passkeys.authentication_options(settings, now=1000.0)
    raw = ceremony.to_session()
    assert passkeys.take_ceremony(raw, "signin", now=1000.0 + passkeys.CHALLENGE_TTL_S) == ceremony
    in_time = 1000.0 + passkeys.CHALLENGE_TTL_S - 1
    for bad, purpose, kwargs in (
        (None, "signin", {}),  # never started, or already popped by a first use
        ({"purpose": "x"}, "signin", {}),  # garbage in the session
        (raw, "signin", {"now": 1000.0 + passkeys.CHALLENGE_TTL_S + 1}),  # expired
        (raw, "signin", {"now": 999.0}),  # issued in the future
        (raw, "signin", {"now": in_time, "binding": "invite:abc"}),  # bound to something else
        (raw, "register", {"now": in_time}),  # another kind of ceremony
    ):
        with pytest.raises(passkeys.PasskeyError) as err:
            passkeys.take_ceremony(bad, purpose, **kwargs)
        assert err.value.code == "challenge"


@pytest.mark.parametrize(
    ("knob", "code"),
    [
        ({"origin": "https://evil.example"}, "origin"),
        ({"rp_id": "evil.example"}, "rp_id"),
        ({"user_verified": False}, "user_verification"),
        ({"challenge": bytes_to_base64url(b"another challenge")}, "challenge"),
    ],
)
async def test_registration_refusals(
    database: Database, settings: Settings, knob: dict[str, object], code: str
) -> None:
    user = await _new_user(database)
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    options, ceremony = passkeys.registration_options(
        settings, user_id=user.id, user_name="x", display_name="x", rp_name="门户"
    )
    with pytest.raises(passkeys.PasskeyError) as err:
        passkeys.verify_registration(settings, ceremony, soft.create(options, **knob))  # type: ignore[arg-type]
    assert err.value.code == code
    assert await _passkey_rows(database, user.id) == []


@pytest.mark.parametrize(
    ("knob", "code"),
    [
        ({"origin": "https://evil.example"}, "origin"),
        ({"rp_id": "evil.example"}, "rp_id"),
        ({"user_verified": False}, "user_verification"),
        ({"sign_count": 3}, "counter"),  # after 5: went backwards
        ({"sign_count": 5}, "counter"),  # did not move
    ],
)
async def test_sign_in_refusals_change_nothing(
    database: Database, settings: Settings, knob: dict[str, object], code: str
) -> None:
    user = await _new_user(database)
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, user.id, soft)
    options, ceremony = passkeys.authentication_options(settings)
    async with database.session(None) as s:
        await passkeys.authenticate(s, settings, ceremony, soft.get(options, sign_count=5))
    [before] = await _passkey_rows(database, user.id)
    options, ceremony = passkeys.authentication_options(settings)
    answer = soft.get(options, **knob)  # type: ignore[arg-type]
    with pytest.raises(passkeys.PasskeyError) as err:
        async with database.session(None) as s:
            await passkeys.authenticate(s, settings, ceremony, answer)
    assert err.value.code == code
    [after] = await _passkey_rows(database, user.id)
    assert (after.sign_count, after.last_used_at) == (before.sign_count, before.last_used_at)


async def test_forged_signature_revoked_passkey_and_unknown_credential(
    database: Database, settings: Settings
) -> None:
    user = await _new_user(database)
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    passkey_id = await give_passkey(database, settings, user.id, soft)

    options, ceremony = passkeys.authentication_options(settings)
    forged = soft.get(options)
    forged["response"]["signature"] = bytes_to_base64url(b"not a signature")
    with pytest.raises(passkeys.PasskeyError) as err:
        async with database.session(None) as s:
            await passkeys.authenticate(s, settings, ceremony, forged)
    assert err.value.code == "invalid"

    stranger = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    stranger.create(
        passkeys.registration_options(
            settings, user_id=user.id, user_name="x", display_name="x", rp_name="p"
        )[0]
    )
    options, ceremony = passkeys.authentication_options(settings)
    with pytest.raises(passkeys.PasskeyError) as err:
        async with database.session(None) as s:
            await passkeys.authenticate(s, settings, ceremony, stranger.get(options))
    assert err.value.code == "unknown_credential"  # never registered here

    await give_passkey(database, settings, user.id, SoftAuthenticator(origin=settings.base_url))
    async with database.session(Scope.system("test")) as s:
        assert await passkeys.revoke_passkey(s, user.id, passkey_id) is not None
    options, ceremony = passkeys.authentication_options(settings)
    with pytest.raises(passkeys.PasskeyError) as err:
        async with database.session(None) as s:
            await passkeys.authenticate(
                s, settings, ceremony, soft.get(options, credential=soft.credentials[0])
            )
    assert err.value.code == "unknown_credential"  # revoked


async def test_rename_revoke_and_never_the_last_way_in(
    database: Database, settings: Settings, world: World
) -> None:
    user = await _new_user(database)
    first = await give_passkey(
        database, settings, user.id, SoftAuthenticator(origin=settings.base_url), "旧手机"
    )
    other = await _new_user(database)
    async with database.session(Scope.system("test")) as s:
        assert await passkeys.rename_passkey(s, other.id, first, "别人的") is None  # not theirs
        with pytest.raises(passkeys.PasskeyError) as err:
            await passkeys.rename_passkey(s, user.id, first, "x" * 81)
        assert err.value.code == "name"
        assert (await passkeys.rename_passkey(s, user.id, first, "工作手机")).name == "工作手机"  # type: ignore[union-attr]
        assert not await passkeys.can_revoke_any(s, user.id)
        with pytest.raises(passkeys.PasskeyError) as err:
            await passkeys.revoke_passkey(s, user.id, first)
        assert err.value.code == "last_passkey"
    second = await give_passkey(
        database, settings, user.id, SoftAuthenticator(origin=settings.base_url), "电脑"
    )
    async with database.session(Scope.system("test")) as s:
        assert await passkeys.can_revoke_any(s, user.id)
        assert await passkeys.revoke_passkey(s, other.id, first) is None
        assert await passkeys.revoke_passkey(s, user.id, first) is not None
        assert [p.id for p in await passkeys.list_passkeys(s, user.id)] == [second]
    rows = await _passkey_rows(database, user.id)
    assert len(rows) == 2 and rows[0].revoked_at is not None  # kept as history for old signatures


# -- HTTP ---------------------------------------------------------------------------------------------


async def test_sign_in_over_http_sets_the_session_and_a_replay_is_refused(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    manager = world.users["manager_a"]
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, manager.id, soft)

    page = await client.get("/signin/passkey")
    assert page.status_code == 200
    text = page_text(page)
    assert zh("Sign in with a passkey") in text and zh("This browser cannot use passkeys") in text
    assert "/vendor/@simplewebauthn/browser/dist/bundle/index.umd.min.js" in text
    vendor = await client.get("/vendor/@simplewebauthn/browser/dist/bundle/index.umd.min.js")
    assert vendor.status_code == 200 and "SimpleWebAuthnBrowser" in vendor.text
    assert (await client.get("/static/js/passkeys.js")).status_code == 200

    no_csrf = await client.post("/signin/passkey/options", json={})
    assert no_csrf.status_code == 403  # JSON endpoints need the CSRF header like any POST
    options = (await post_json(client, "/signin/passkey/options")).json()["publicKey"]
    answer = soft.get(options)
    before = time.time()
    done = await post_json(client, "/signin/passkey", {"credential": answer})
    assert done.status_code == 200, done.text
    assert done.json() == {"redirect": f"/t/{world.tenants['a'].id}"}
    session = await session_of(client, database)
    assert session["uid"] == str(manager.id) and session["method"] == "passkey"
    assert session["ctx"] == f"member:{world.tenants['a'].id}"
    assert before - 1 <= session["signed_in_at"] <= time.time() + 1
    assert set(session) - {"_renewed"} == {"uid", "ctx", "locale", "signed_in_at", "method"}
    assert (await client.get(f"/t/{world.tenants['a'].id}")).status_code == 200

    # The same answer again: its challenge was used up by the first sign-in.
    replay = await post_json(client, "/signin/passkey", {"credential": answer})
    assert replay.status_code == 400
    assert replay.json()["code"] == "challenge"
    assert replay.json()["detail"] == zh(MESSAGES["challenge"])
    # A fresh challenge with an old answer is refused too: the answer names another challenge.
    await post_json(client, "/signin/passkey/options")
    replay = await post_json(client, "/signin/passkey", {"credential": answer})
    assert replay.status_code == 400 and replay.json()["code"] == "challenge"


@pytest.mark.parametrize(
    ("knob", "code"),
    [
        ({"origin": "https://evil.example"}, "origin"),
        ({"rp_id": "evil.example"}, "rp_id"),
        ({"user_verified": False}, "user_verification"),
    ],
)
async def test_refused_sign_in_over_http_says_why_and_signs_nobody_in(
    client: AsyncTestClient,
    database: Database,
    settings: Settings,
    world: World,
    knob: dict[str, object],
    code: str,
) -> None:
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, world.users["manager_b"].id, soft)
    options = (await post_json(client, "/signin/passkey/options")).json()["publicKey"]
    refused = await post_json(client, "/signin/passkey", {"credential": soft.get(options, **knob)})  # type: ignore[arg-type]
    assert refused.status_code == 400 and refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert (body["code"], body["detail"], body["type"]) == (
        code,
        zh(MESSAGES[code]),
        f"urn:fire-portal:problem:{code}",
    )
    home = await client.get("/")
    assert home.status_code in (302, 303) and home.headers["location"] == "/signin"


async def test_passkey_page_adds_renames_and_revokes(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    me = world.users["manager_c"]
    phone = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    first = await give_passkey(database, settings, me.id, phone, "旧手机")
    await sign_in(client, me.login)

    listing = await client.get("/account/passkeys")
    text = page_text(listing)
    assert listing.status_code == 200 and "旧手机" in text
    assert (
        zh(
            "This is your only passkey, so it cannot be revoked: you would have no way to sign in. "
            "Add another passkey first, or ask whoever invited you for a recovery invitation."
        )
        in text
    )
    refused = await post_form(client, f"/account/passkeys/{first}/revoke", {})
    assert refused.status_code == 400 and zh(MESSAGES["last_passkey"]) in page_text(refused)
    assert (await _passkey_rows(database, me.id))[0].revoked_at is None

    # Add another one from this (signed-in) browser: options, the authenticator, the answer.
    laptop = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    options = (await post_json(client, "/account/passkeys/options")).json()["publicKey"]
    assert [c["id"] for c in options["excludeCredentials"]] == [
        bytes_to_base64url(phone.credentials[0].credential_id)
    ]
    added = await post_json(
        client, "/account/passkeys", {"credential": laptop.create(options), "name": "办公电脑"}
    )
    assert added.status_code == 200 and added.json() == {"redirect": "/account/passkeys"}
    # A registration without user verification is refused, and nothing is added.
    options = (await post_json(client, "/account/passkeys/options")).json()["publicKey"]
    no_uv = await post_json(
        client, "/account/passkeys", {"credential": SoftAuthenticator().create(options, user_verified=False)}
    )
    assert no_uv.status_code == 400 and no_uv.json()["detail"] == zh(MESSAGES["user_verification"])
    rows = await _passkey_rows(database, me.id)
    assert [r.name for r in rows] == ["旧手机", "办公电脑"]

    renamed = await post_form(client, f"/account/passkeys/{first}/rename", {"name": "备用手机"})
    assert renamed.status_code == 303
    bad = await post_form(client, f"/account/passkeys/{first}/rename", {"name": " "})
    assert bad.status_code == 400 and zh(MESSAGES["name"]) in page_text(bad)
    revoked = await post_form(client, f"/account/passkeys/{first}/revoke", {})
    assert revoked.status_code == 303
    rows = await _passkey_rows(database, me.id)
    assert rows[0].name == "备用手机" and rows[0].revoked_at is not None and rows[1].revoked_at is None

    # Somebody else's passkey: the same answer as a missing one.
    foreign = await give_passkey(
        database, settings, world.users["manager_a"].id, SoftAuthenticator(), "别人的"
    )
    for path in (f"/account/passkeys/{foreign}/revoke", f"/account/passkeys/{uuid.uuid4()}/revoke"):
        assert (await post_form(client, path, {})).status_code == 404
    assert (
        await post_form(client, f"/account/passkeys/{foreign}/rename", {"name": "偷改"})
    ).status_code == 404


# -- WebAuthn details (L3 sections 7.1, 7.2, 8.7) -------------------------------------------------------


def _copy(value: dict[str, object]) -> dict[str, object]:
    """A deep copy of a ceremony answer, to tamper with."""
    return json.loads(json.dumps(value))  # type: ignore[no-any-return]


async def test_a_sign_in_without_a_user_handle_is_refused(database: Database, settings: Settings) -> None:
    """Sign-in identifies nobody first (discoverable credentials): the user handle must be there."""
    user = await _new_user(database)
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, user.id, soft)
    options, ceremony = passkeys.authentication_options(settings)
    answer = _copy(soft.get(options))
    del answer["response"]["userHandle"]  # type: ignore[attr-defined]
    [before] = await _passkey_rows(database, user.id)
    with pytest.raises(passkeys.PasskeyError) as err:
        async with database.session(None) as s:
            await passkeys.authenticate(s, settings, ceremony, answer)
    assert err.value.code == "unknown_credential"
    [after] = await _passkey_rows(database, user.id)
    assert (after.sign_count, after.last_used_at) == (before.sign_count, before.last_used_at)


async def _registration(database: Database, settings: Settings) -> tuple[User, Ceremony, dict[str, object]]:
    """A new person's registration ceremony and a copy of their authenticator's answer, to tamper with."""
    user = await _new_user(database)
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    options, ceremony = passkeys.registration_options(
        settings, user_id=user.id, user_name="x", display_name="x", rp_name="门户"
    )
    return user, ceremony, _copy(soft.create(options))


async def test_a_credential_id_over_1023_bytes_is_refused(database: Database, settings: Settings) -> None:
    _user, ceremony, answer = await _registration(database, settings)
    answer["id"] = answer["rawId"] = bytes_to_base64url(b"\x01" * 1024)
    with pytest.raises(passkeys.PasskeyError, match="1024 bytes"):
        passkeys.verify_registration(settings, ceremony, answer)


async def test_a_none_attestation_with_a_statement_is_refused(database: Database, settings: Settings) -> None:
    user, ceremony, answer = await _registration(database, settings)
    response = answer["response"]
    assert isinstance(response, dict)
    attestation = cbor2.loads(base64url_to_bytes(response["attestationObject"]))
    attestation["attStmt"] = {"sig": b"\x00" * 64}
    response["attestationObject"] = bytes_to_base64url(cbor2.dumps(attestation))
    with pytest.raises(passkeys.PasskeyError, match="none attestation"):
        passkeys.verify_registration(settings, ceremony, answer)
    assert await _passkey_rows(database, user.id) == []


async def test_a_ceremony_body_is_bounded(client: AsyncTestClient) -> None:
    token = await csrf_token(client)
    huge = {"credential": {"id": "x" * (70 * 1024)}}
    response = await client.post("/signin/passkey", json=huge, headers={"x-csrftoken": token})
    assert response.status_code == 413
