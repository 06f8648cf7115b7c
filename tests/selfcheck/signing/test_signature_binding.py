"""A signature is bound to the passkey registered in the audit chain and to the hash fixed at submission
(issue 14): someone who can write to the database and re-signs a changed document with a key of their own,
or swaps the passkey's public key, is caught by ``portal verify-report``, the public pages and the board —
for the monthly report and for the annual commitment. The honest signature still verifies, and shows its
key's fingerprint and the date the key was registered."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from webauthn import verify_authentication_response
from webauthn.helpers import base64url_to_bytes, parse_authentication_credential_json

from portal.audit import services as audit
from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo.softauthn import SoftAuthenticator
from portal.identity import passkeys
from portal.models.audit import AuditEntry
from portal.models.identity import Passkey
from portal.models.selfcheck import (
    Answer,
    Commitment,
    DocumentType,
    SelfCheck,
    SelfCheckAnswer,
    SelfCheckStatus,
    Signature,
)
from portal.models.tenants import Tenant
from portal.selfcheck.commitments import services as commitments
from portal.selfcheck.deadlines import period_of
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.reports import services as reports
from portal.selfcheck.signing import services as signing
from tests.fixtures.cli import run_portal
from tests.fixtures.databases import PG_HOST, PG_PORT
from tests.fixtures.factories import World
from tests.fixtures.web import post_form, sign_in
from tests.identity.helpers import give_passkey, page_text, zh
from tests.selfcheck.cycle import sign_over_http, submitted_selfcheck

# What the public page said of a signature the issue showed to be forgeable, and says of a valid one now.
OLD_CLAIM = (
    "The signature was made with the signer's passkey over exactly this document, "
    "and the document has not changed since."
)
CLAIM = (
    "The signature was made with the passkey registered to the signer (the audit log recorded its key's "
    "fingerprint when it was added) over exactly the document fixed at submission, and the document has "
    "not changed since."
)


def grouped(hex_digest: str) -> str:
    """A fingerprint as the pages show it: groups of four."""
    return " ".join(hex_digest[i : i + 4] for i in range(0, len(hex_digest), 4))


async def _registration_shown(database: Database, settings: Settings, passkey_id: uuid.UUID) -> str:
    """When the passkey's registration entry says it was added, as the pages show times."""
    async with database.session(Scope.system("test: registration")) as s:
        at = (
            await s.execute(
                select(AuditEntry.at).where(
                    AuditEntry.action == "auth.passkey_added", AuditEntry.object_id == str(passkey_id)
                )
            )
        ).scalar_one()
    return at.astimezone(ZoneInfo(settings.display_timezone)).strftime("%Y-%m-%d %H:%M")


async def _key_of(database: Database, passkey_id: uuid.UUID) -> bytes:
    async with database.session(Scope.system("test: key")) as s:
        passkey = await s.get(Passkey, passkey_id)
        assert passkey is not None
        return passkey.public_key


def _fresh_key(settings: Settings, user_id: uuid.UUID) -> tuple[SoftAuthenticator, passkeys.NewCredential]:
    """A key of the attacker's own for the signer's account, parsed as the portal parses one; never stored."""
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    options, ceremony = passkeys.registration_options(
        settings, user_id=user_id, user_name="x", display_name="x", rp_name="portal"
    )
    return soft, passkeys.verify_registration(settings, ceremony, soft.create(options))


async def _resign(
    database: Database,
    settings: Settings,
    document: signing.Document,
    signer_id: uuid.UUID,
) -> None:
    """The attack of the issue, its last step: sign ``document`` (already changed in the database) with a
    fresh key and overwrite the signature row with that assertion."""
    soft, fresh = _fresh_key(settings, signer_id)
    options, _ceremony = signing.signing_options(settings, document, [fresh.credential_id])
    answer: dict[str, Any] = soft.get(options)
    # The forgery is a sound WebAuthn signature over the new hash: only the binding to the chain betrays it.
    verify_authentication_response(
        credential=parse_authentication_credential_json(answer),
        expected_challenge=bytes.fromhex(document.sha256),
        expected_rp_id=settings.rp_id,
        expected_origin=settings.base_url,
        credential_public_key=fresh.public_key,
        credential_current_sign_count=0,
        require_user_verification=True,
    )
    response = answer["response"]
    async with database.session(Scope.system("test: overwrite the signature")) as s:
        await s.execute(
            update(Signature)
            .where(Signature.document_type == document.type, Signature.document_id == document.id)
            .values(
                sha256=document.sha256,
                credential_id=fresh.credential_id,
                public_key=fresh.public_key,
                authenticator_data=base64url_to_bytes(response["authenticatorData"]),
                client_data_json=base64url_to_bytes(response["clientDataJSON"]),
                signature=base64url_to_bytes(response["signature"]),
                user_handle=base64url_to_bytes(response["userHandle"]),
            )
        )


async def _swap_key(
    database: Database, settings: Settings, passkey_id: uuid.UUID, user_id: uuid.UUID
) -> None:
    """Only the passkey row's public key replaced by another."""
    _soft, fresh = _fresh_key(settings, user_id)
    async with database.session(Scope.system("test: swap the key")) as s:
        await s.execute(update(Passkey).where(Passkey.id == passkey_id).values(public_key=fresh.public_key))


def _refuses_to_vouch(text: str) -> None:
    """A page that says the signature cannot be verified, and nothing that would vouch for it."""
    assert zh("signature cannot be verified") in text
    assert zh("signature valid") not in text
    assert zh(CLAIM) not in text and zh(OLD_CLAIM) not in text


async def _signed_report(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> tuple[SelfCheck, uuid.UUID]:
    """This month's report of tenant a (the public board lists it), signed by its responsible person over
    HTTP; the client is signed out after. Returns the report and the signer's passkey id."""
    a = world.tenants["a"]
    responsible = world.users["both"]
    sc = await submitted_selfcheck(database, a.id, world.users["manager_a"].id, period_of(datetime.now(UTC)))
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    passkey_id = await give_passkey(database, settings, responsible.id, soft)
    await sign_in(client, responsible.login, ctx=f"member:{a.id}")
    status, body = await sign_over_http(client, soft, f"/t/{a.id}/selfchecks/{sc.id}/sign")
    assert status == 200, body
    client.cookies.clear()
    return sc, passkey_id


async def _signed_commitment(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> tuple[Commitment, uuid.UUID, str]:
    """This year's commitment of tenant a, prepared by the manager and signed by the responsible person;
    the client is signed out after. Returns it, the passkey id and the signer's commitment page."""
    a = world.tenants["a"]
    responsible = world.users["both"]
    await sign_in(client, world.users["manager_a"].login)
    assert (await post_form(client, f"/t/{a.id}/commitment/prepare", {})).status_code == 303
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    passkey_id = await give_passkey(database, settings, responsible.id, soft)
    await sign_in(client, responsible.login, ctx=f"member:{a.id}")
    status, body = await sign_over_http(client, soft, f"/t/{a.id}/commitment/sign")
    assert status == 200, body
    own = page_text(await client.get(f"/t/{a.id}/commitment"))
    client.cookies.clear()
    async with database.session(Scope.tenant(a.id)) as s:
        c = (await s.execute(select(Commitment).where(Commitment.tenant_id == a.id))).scalar_one()
    return c, passkey_id, own


async def test_an_honest_signature_shows_its_key_and_when_it_was_registered(
    client: AsyncTestClient, database: Database, settings: Settings, world: World, tmp_path: Path
) -> None:
    a = world.tenants["a"]
    sc, passkey_id = await _signed_report(client, database, settings, world)
    key = grouped(hashlib.sha256(await _key_of(database, passkey_id)).hexdigest())
    registered = await _registration_shown(database, settings, passkey_id)

    honest = await run_portal(settings, tmp_path, "verify-report", str(sc.id))
    assert honest.returncode == 0 and honest.stdout.splitlines()[-1] == "OK", honest.stdout
    assert f"passkey:  {key.replace(' ', '')}" in honest.stdout
    page = page_text(await client.get(f"/verify/report/{sc.id}"))
    assert zh("signature valid") in page and zh(CLAIM) in page
    assert key in page and registered in page
    board = page_text(await client.get(f"/board/{a.id}"))
    assert zh("signature valid") in board and zh("signature problem") not in board

    c, passkey_id, own = await _signed_commitment(client, database, settings, world)  # a second passkey
    key = grouped(hashlib.sha256(await _key_of(database, passkey_id)).hexdigest())
    registered = await _registration_shown(database, settings, passkey_id)
    assert zh("signature valid") in own and key in own and registered in own
    board = page_text(await client.get(f"/board/{a.id}"))
    assert zh("signature valid") in board and key in board and registered in board
    page = page_text(await client.get(f"/verify/commitment/{c.id}"))
    assert zh(CLAIM) in page and key in page and registered in page


@pytest.mark.parametrize("attack", ["resign", "swap_key"])
async def test_a_report_re_signed_or_its_key_swapped_in_the_database_is_caught(
    client: AsyncTestClient,
    database: Database,
    settings: Settings,
    world: World,
    tmp_path: Path,
    attack: str,
) -> None:
    a = world.tenants["a"]
    responsible = world.users["both"]
    sc, passkey_id = await _signed_report(client, database, settings, world)
    before = await run_portal(settings, tmp_path, "verify-report", str(sc.id))
    assert before.returncode == 0, before.stdout

    if attack == "resign":
        # With write access to the database: change an answer, sign the new hash with a fresh key,
        # overwrite the signature row (and the report's stored hash, to leave nothing inconsistent).
        async with database.session(Scope.system("test: change an answer")) as s:
            await s.execute(
                update(SelfCheckAnswer)
                .where(SelfCheckAnswer.selfcheck_id == sc.id, SelfCheckAnswer.answer == Answer.FAIL)
                .values(answer=Answer.PASS, note="")
            )
        async with database.session(Scope.system("test: the new hash")) as s:
            changed = await sc_services.load(s, sc.id)
            tenant = await s.get(Tenant, a.id)
            assert changed is not None and tenant is not None
            new_hash = await sc_services.frozen_hash(s, changed, tenant)
            changed.report_sha256 = new_hash
        assert new_hash != sc.report_sha256
        document = signing.Document(DocumentType.MONTHLY_REPORT, sc.id, a.id, new_hash)
        await _resign(database, settings, document, responsible.id)
        failed = {"recorded", "registered", "key", "fixed_hash", "unchanged"}
    else:
        await _swap_key(database, settings, passkey_id, responsible.id)
        failed = {"key"}

    out = await run_portal(settings, tmp_path, "verify-report", str(sc.id))
    assert out.returncode == 1, out.stdout
    last = out.stdout.splitlines()[-1]
    assert last.startswith("FAILED: ") and set(last.removeprefix("FAILED: ").split(", ")) == failed
    # Each failed check is named with its reason, in the default language (zh_CN).
    assert zh("The stored public key is not the one recorded when the signer's passkey was registered.") in (
        out.stdout
    )
    _refuses_to_vouch(page_text(await client.get(f"/verify/report/{sc.id}")))
    board = page_text(await client.get(f"/board/{a.id}"))
    assert zh("signature problem") in board and zh("signature valid") not in board
    async with database.session(Scope.tenant(a.id)) as s:
        stored = await s.get(SelfCheck, sc.id)
        assert stored is not None and stored.status is SelfCheckStatus.SIGNED  # checking changes nothing


@pytest.mark.parametrize("attack", ["resign", "swap_key"])
async def test_a_commitment_re_signed_or_its_key_swapped_in_the_database_is_caught(
    client: AsyncTestClient, database: Database, settings: Settings, world: World, attack: str
) -> None:
    a = world.tenants["a"]
    responsible = world.users["both"]
    c, passkey_id, _own = await _signed_commitment(client, database, settings, world)
    assert zh("signature valid") in page_text(await client.get(f"/board/{a.id}"))

    if attack == "resign":
        # A weaker text, with its own hash stored, signed with a fresh key over the signature row.
        async with database.session(Scope.system("test: change the text")) as s:
            row = await s.get(Commitment, c.id)
            tenant = await s.get(Tenant, a.id)
            assert row is not None and tenant is not None
            row.text_zh = "本单位不作任何承诺。"
            row.sha256 = signing.canonical_hash(commitments.canonical(row, tenant))
            new_hash = row.sha256
        document = signing.Document(DocumentType.COMMITMENT, c.id, a.id, new_hash)
        await _resign(database, settings, document, responsible.id)
    else:
        await _swap_key(database, settings, passkey_id, responsible.id)

    _refuses_to_vouch(page_text(await client.get(f"/verify/commitment/{c.id}")))
    _refuses_to_vouch(page_text(await client.get(f"/board/{a.id}")))
    async with database.session(Scope.tenant(a.id)) as s:
        row = await s.get(Commitment, c.id)
        assert row is not None
        check = await commitments.verify_commitment(s, row)
    assert check.verification is not None and not check.verification.ok


async def _write_entry(
    database: Database, settings: Settings, entry_id: uuid.UUID, detail: dict[str, Any], entry_hash: str
) -> None:
    """What only the database's owner could do (the application's role may not update the audit log on
    PostgreSQL): overwrite an entry's detail and hash."""
    if settings.database_url.startswith("sqlite"):
        async with database.session(Scope.system("test: rewrite the entry")) as s:
            await s.execute(
                update(AuditEntry).where(AuditEntry.id == entry_id).values(detail=detail, hash=entry_hash)
            )
        return
    name = settings.database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{name}")
    try:
        await conn.execute(
            "UPDATE audit_entry SET detail = $1::json, hash = $2 WHERE id = $3",
            json.dumps(detail, ensure_ascii=False),
            entry_hash,
            entry_id,
        )
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _rewritten(
    database: Database, settings: Settings, entry_id: uuid.UUID, change: Callable[[dict[str, Any]], None]
) -> AsyncIterator[None]:
    """The entry's detail changed and given the hash of its new content, for the block; then put back (the
    platform chain is shared by every test of the session)."""
    async with database.session(Scope.system("test: read the entry")) as s:
        entry = await s.get(AuditEntry, entry_id)
        assert entry is not None
        s.expunge(entry)
    original, original_hash = copy.deepcopy(entry.detail), entry.hash
    entry.detail = copy.deepcopy(original)
    change(entry.detail)
    await _write_entry(database, settings, entry_id, entry.detail, audit.entry_hash(entry))
    try:
        yield
    finally:
        await _write_entry(database, settings, entry_id, original, original_hash)


@pytest.mark.parametrize("entry", ["registration", "submission"])
async def test_an_audit_entry_rewritten_with_a_matching_hash_is_caught(
    client: AsyncTestClient, database: Database, settings: Settings, world: World, entry: str
) -> None:
    a = world.tenants["a"]
    sc, passkey_id = await _signed_report(client, database, settings, world)
    async with database.session(Scope.system("test: the entries")) as s:
        if entry == "registration":  # the key recorded for the passkey becomes another one
            where = [AuditEntry.action == "auth.passkey_added", AuditEntry.object_id == str(passkey_id)]
        else:  # the hash fixed at submission becomes another one
            where = [AuditEntry.action == "selfcheck.submitted", AuditEntry.object_id == str(sc.id)]
        entry_id = (await s.execute(select(AuditEntry.id).where(*where))).scalar_one()
    _soft, fresh = _fresh_key(settings, world.users["both"].id)
    other = {
        ("key_sha256" if entry == "registration" else "sha256"): hashlib.sha256(fresh.public_key).hexdigest()
    }
    async with _rewritten(database, settings, entry_id, lambda d: d.update(other)):
        async with database.session(Scope.tenant(a.id)) as s:
            check = await reports.verify_report(s, sc.id)
        assert check is not None and check.verification is not None
        assert "audit_chain" in {f.value for f in check.verification.failures}
        _refuses_to_vouch(page_text(await client.get(f"/verify/report/{sc.id}")))
    # Put back, the entry is what the chain holds again, and the signature verifies.
    async with database.session(Scope.tenant(a.id)) as s:
        check = await reports.verify_report(s, sc.id)
    assert check is not None and check.verification is not None and check.verification.ok


async def test_a_passkey_whose_registration_recorded_no_key_cannot_sign(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    """A passkey registered before keys were recorded (its audit entry names no key) is refused with a
    clear message, and nothing is signed."""
    a = world.tenants["a"]
    responsible = world.users["both"]
    sc = await submitted_selfcheck(database, a.id, world.users["manager_a"].id, "2026-03")
    soft, credential = _fresh_key(settings, responsible.id)
    async with database.session(Scope.system("test: an old registration")) as s:
        passkey = Passkey(
            user_id=responsible.id,
            credential_id=credential.credential_id,
            public_key=credential.public_key,
            sign_count=0,
            transports=[],
            name="old phone",
        )
        s.add(passkey)
        await s.flush()
        await audit.record(  # what a registration recorded before
            s,
            "auth.passkey_added",
            tenant_id=None,
            object_type="passkey",
            object_id=passkey.id,
            detail={"user_id": str(responsible.id), "name": "old phone", "aaguid": None},
        )
    await sign_in(client, responsible.login, ctx=f"member:{a.id}")
    status, body = await sign_over_http(client, soft, f"/t/{a.id}/selfchecks/{sc.id}/sign")
    assert status == 400 and body["code"] == "unregistered"
    assert body["detail"] == zh(
        "This passkey cannot sign: the audit log does not record its key (it was added before keys were "
        "recorded). Add a new passkey on your passkeys page, then sign."
    )
    async with database.session(Scope.tenant(a.id)) as s:
        stored = await s.get(SelfCheck, sc.id)
        assert stored is not None and stored.status is SelfCheckStatus.SUBMITTED
        assert (await s.execute(select(Signature).where(Signature.document_id == sc.id))).first() is None
        assert (await s.get(Passkey, passkey.id)).sign_count == 0  # type: ignore[union-attr]
