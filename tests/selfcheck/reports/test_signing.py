"""Signing the monthly report and the year's commitment with a passkey; re-verification by the CLI and the
public pages; the refusals (non-responsible signer, unsubmitted report, someone else's passkey, a changed
report, a replayed ceremony) change nothing."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo.softauthn import SoftAuthenticator
from portal.models.selfcheck import (
    AccountabilityEntry,
    Answer,
    Commitment,
    CommitmentStatus,
    SelfCheck,
    SelfCheckAnswer,
    SelfCheckStatus,
    Signature,
)
from portal.models.tenants import Tenant
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.reports import services as reports
from portal.selfcheck.signing.verification import FAILURES, Check
from tests.fixtures.cli import run_portal
from tests.fixtures.factories import World
from tests.fixtures.web import post_form, sign_in
from tests.identity.helpers import give_passkey, page_text, post_json, zh
from tests.selfcheck.cycle import sign_over_http, submitted_selfcheck


async def test_responsible_person_signs_the_report_and_anyone_can_verify_it(
    client: AsyncTestClient, database: Database, settings: Settings, world: World, tmp_path: Path
) -> None:
    a = world.tenants["a"]
    responsible = world.users["both"]
    sc = await submitted_selfcheck(database, a.id, world.users["manager_a"].id, "2026-08")
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, responsible.id, soft)
    await sign_in(client, responsible.login, ctx=f"member:{a.id}")
    page = await client.get(f"/t/{a.id}/selfchecks/{sc.id}")
    assert page.status_code == 200 and zh("Sign the report with my passkey") in page_text(page)

    base = f"/t/{a.id}/selfchecks/{sc.id}/sign"
    options = await post_json(client, f"{base}/options")
    assert options.status_code == 200
    # The challenge is the report's SHA-256, and only the signer's own passkeys are offered.
    public_key = options.json()["publicKey"]
    assert base64url_to_bytes(public_key["challenge"]).hex() == sc.report_sha256
    assert [c["id"] for c in public_key["allowCredentials"]] == [
        bytes_to_base64url(soft.credentials[0].credential_id)
    ]
    signed = await post_json(client, base, {"credential": soft.get(public_key)})
    assert signed.status_code == 200, signed.text
    assert signed.json()["redirect"] == f"/t/{a.id}/selfchecks/{sc.id}"

    async with database.session(Scope.tenant(a.id)) as s:
        stored = await s.get(SelfCheck, sc.id)
        assert stored is not None and stored.status is SelfCheckStatus.SIGNED
        assert stored.signed_by_id == responsible.id
        sig = (await s.execute(select(Signature).where(Signature.document_id == sc.id))).scalar_one()
        assert sig.sha256 == sc.report_sha256 and sig.signer_name == responsible.display_name

    shown = await client.get(f"/t/{a.id}/selfchecks/{sc.id}")
    assert zh("Check the signature") in page_text(shown)

    # The public verification page, signed out.
    await client.post("/signout", headers={"x-csrftoken": client.cookies.get("portal_csrf", "")})
    client.cookies.clear()
    public = await client.get(f"/verify/report/{sc.id}")
    text = page_text(public)
    assert public.status_code == 200 and zh("signature valid") in text and responsible.display_name in text
    assert "灭火器过期" not in text  # the public page shows no answers or hazards

    # The CLI agrees: every check passes, exit 0.
    ok = await run_portal(settings, tmp_path, "verify-report", str(sc.id))
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.splitlines()[-1] == "OK"

    # Someone changes an answer in the database after signing: both the CLI and the page say so.
    async with database.session(Scope.system("test: tamper")) as s:
        await s.execute(
            update(SelfCheckAnswer)
            .where(SelfCheckAnswer.selfcheck_id == sc.id, SelfCheckAnswer.answer == Answer.FAIL)
            .values(answer=Answer.PASS, note="")
        )
    changed = await run_portal(settings, tmp_path, "verify-report", str(sc.id))
    assert changed.returncode == 1 and changed.stdout.splitlines()[-1] == "FAILED: unchanged"
    assert zh(FAILURES[Check.UNCHANGED]) in changed.stdout  # named, in the default language
    tampered = await client.get(f"/verify/report/{sc.id}")
    assert zh("changed after signing") in page_text(tampered)

    # A forged signature byte: the signature itself no longer verifies.
    async with database.session(Scope.system("test: forge")) as s:
        sig_row = (await s.execute(select(Signature).where(Signature.document_id == sc.id))).scalar_one()
        forged = bytearray(sig_row.signature)
        forged[-1] ^= 0x01
        sig_row.signature = bytes(forged)
    broken = await run_portal(settings, tmp_path, "verify-report", str(sc.id))
    assert broken.returncode == 1 and broken.stdout.splitlines()[-1] == "FAILED: signature, unchanged"


async def test_signing_refusals_change_nothing(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    a = world.tenants["a"]
    manager = world.users["manager_a"]
    responsible = world.users["both"]
    sc = await submitted_selfcheck(database, a.id, manager.id, "2026-07")
    base = f"/t/{a.id}/selfchecks/{sc.id}/sign"

    # The manager (not the responsible person) is refused before any passkey prompt.
    manager_soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, manager.id, manager_soft)
    await sign_in(client, manager.login)
    status, body = await sign_over_http(client, manager_soft, base)
    assert status == 403 and body["detail"] == zh("Only the unit's responsible person can sign.")

    # The responsible person without a passkey is told to add one (the page, and the endpoint too).
    await sign_in(client, responsible.login, ctx=f"member:{a.id}")
    shown = page_text(await client.get(f"/t/{a.id}/selfchecks/{sc.id}"))
    assert zh("Add a passkey first") in shown and zh("Sign the report with my passkey") not in shown
    status, body = await sign_over_http(client, manager_soft, base)
    assert status == 409 and body["detail"] == zh(
        "You have no passkey yet. Add one on your passkeys page, then sign."
    )

    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, responsible.id, soft)
    # Someone else's passkey (the manager's) answering the responsible person's ceremony.
    options = await post_json(client, f"{base}/options")
    wrong = await post_json(client, base, {"credential": manager_soft.get(options.json()["publicKey"])})
    assert wrong.status_code == 400 and wrong.json()["code"] == "unknown_credential"
    # A ceremony is single-use: the same (good) answer after a refusal finds no challenge.
    replay = await post_json(client, base, {"credential": soft.get(options.json()["publicKey"])})
    assert replay.status_code == 400 and replay.json()["code"] == "challenge"
    # An answer made for another website.
    status, body = await sign_over_http(client, soft, base, origin="https://evil.example")
    assert status == 400 and body["code"] == "origin"
    # Signing some other challenge (not the report's hash).
    status, body = await sign_over_http(
        client, soft, base, challenge="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    )
    assert status == 400 and body["code"] == "challenge"
    # Without user verification.
    status, body = await sign_over_http(client, soft, base, user_verified=False)
    assert status == 400 and body["code"] == "user_verification"

    async with database.session(Scope.tenant(a.id)) as s:
        stored = await s.get(SelfCheck, sc.id)
        assert stored is not None and stored.status is SelfCheckStatus.SUBMITTED and stored.signed_at is None
        assert (await s.execute(select(Signature).where(Signature.document_id == sc.id))).first() is None

    # A report that is not submitted yet cannot be signed.
    async with database.session(Scope.system("test")) as s:
        tenant = await s.get(Tenant, a.id)
        due = await sc_services.ensure_selfcheck(s, tenant, "2026-06")  # type: ignore[arg-type]
        assert due is not None
    status, body = await sign_over_http(client, soft, f"/t/{a.id}/selfchecks/{due.id}/sign")
    assert status == 409 and body["detail"] == zh("Submit the self-check before signing it.")

    # Finally it signs; a second signature is refused.
    status, body = await sign_over_http(client, soft, base)
    assert status == 200, body
    status, body = await sign_over_http(client, soft, base)
    assert status == 409 and body["detail"] == zh("This report is already signed.")

    # Another tenant's report: 404, like every foreign object.
    b_sc = await submitted_selfcheck(database, world.tenants["b"].id, world.users["manager_b"].id, "2026-07")
    foreign = await post_json(client, f"/t/{a.id}/selfchecks/{b_sc.id}/sign/options")
    assert foreign.status_code == 404
    assert (await client.get(f"/verify/report/{uuid.uuid4()}")).status_code == 404


async def test_signing_resolves_the_overdue_entry_at_once(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    from datetime import UTC, datetime

    from portal.selfcheck.ledger import services as accountability

    a = world.tenants["a"]
    responsible = world.users["both"]
    sc = await submitted_selfcheck(database, a.id, world.users["manager_a"].id, "2026-05")
    async with database.session(Scope.system("test: overdue")) as s:
        row = await s.get(SelfCheck, sc.id)
        assert row is not None
        sc_services.mark_overdue(row, datetime(2026, 6, 10, tzinfo=UTC))
        await accountability.run(s, datetime(2026, 6, 10, tzinfo=UTC), tenant_ids=[a.id])
    async with database.session(Scope.tenant(a.id)) as s:
        open_before = (
            await s.execute(
                select(AccountabilityEntry).where(
                    AccountabilityEntry.subject_id == str(sc.id), AccountabilityEntry.resolved_at.is_(None)
                )
            )
        ).all()
    assert len(open_before) == 1
    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, responsible.id, soft)
    await sign_in(client, responsible.login, ctx=f"member:{a.id}")
    status, body = await sign_over_http(client, soft, f"/t/{a.id}/selfchecks/{sc.id}/sign")
    assert status == 200, body
    async with database.session(Scope.tenant(a.id)) as s:
        entry = (
            await s.execute(select(AccountabilityEntry).where(AccountabilityEntry.subject_id == str(sc.id)))
        ).scalar_one()
        assert entry.resolved_at is not None


async def test_commitment_prepared_signed_and_shown_on_the_public_board(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    a = world.tenants["a"]
    manager = world.users["manager_a"]
    responsible = world.users["both"]
    await sign_in(client, manager.login)
    empty = await client.get(f"/t/{a.id}/commitment")
    assert empty.status_code == 200 and zh("This year's commitment has not been prepared yet.") in page_text(
        empty
    )
    board = await client.get(f"/board/{a.id}")
    assert zh("This year's commitment has not been signed yet.") in page_text(board)
    prepared = await post_form(client, f"/t/{a.id}/commitment/prepare", {})
    assert prepared.status_code == 303
    shown = page_text(await client.get(f"/t/{a.id}/commitment"))
    assert responsible.display_name in shown and "消防安全承诺书" in shown
    # The manager may prepare but not sign.
    manager_soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, manager.id, manager_soft)
    status, body = await sign_over_http(client, manager_soft, f"/t/{a.id}/commitment/sign")
    assert status == 403 and body["detail"] == zh("Only the unit's responsible person can sign.")

    soft = SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)
    await give_passkey(database, settings, responsible.id, soft)
    await sign_in(client, responsible.login, ctx=f"member:{a.id}")
    status, body = await sign_over_http(client, soft, f"/t/{a.id}/commitment/sign")
    assert status == 200, body
    again = await post_form(client, f"/t/{a.id}/commitment/prepare", {})
    assert again.status_code == 409 and zh("This report is already signed.") in page_text(again)

    async with database.session(Scope.tenant(a.id)) as s:
        c = (await s.execute(select(Commitment).where(Commitment.tenant_id == a.id))).scalar_one()
        assert c.status is CommitmentStatus.SIGNED and c.signed_at is not None

    # Signed out: the board shows the people, the commitment with a valid signature, and no hazards.
    client.cookies.clear()
    public = await client.get(f"/board/{a.id}")
    text = page_text(public)
    assert public.status_code == 200
    assert responsible.display_name in text and manager.display_name in text
    assert zh("signature valid") in text and "消防安全承诺书" in text
    verify = await client.get(f"/verify/commitment/{c.id}")
    assert verify.status_code == 200 and zh("signature valid") in page_text(verify)
    assert (await client.get(f"/board/{uuid.uuid4()}")).status_code == 404

    # A tampered commitment text shows as changed.
    async with database.session(Scope.system("test: tamper")) as s:
        await s.execute(update(Commitment).where(Commitment.id == c.id).values(text_zh="改过的文本"))
    tampered = await client.get(f"/board/{a.id}")
    assert zh("changed after signing") in page_text(tampered)


async def test_poster_has_a_qr_code_to_the_board(client: AsyncTestClient, world: World) -> None:
    a = world.tenants["a"]
    await sign_in(client, world.users["manager_a"].login)
    poster = await client.get(f"/t/{a.id}/board/poster")
    assert poster.status_code == 200 and "<svg" in poster.text and f"/board/{a.id}" in poster.text
    assert (await client.get(f"/t/{world.tenants['b'].id}/board/poster")).status_code == 404


async def test_report_check_without_signature(database: Database, world: World) -> None:
    a = world.tenants["a"]
    sc = await submitted_selfcheck(database, a.id, world.users["manager_a"].id, "2026-04")
    async with database.session(Scope.tenant(a.id)) as s:
        check = await reports.verify_report(s, sc.id)
    assert check is not None and check.verification is None


def test_clean_phone_accepts_what_people_type_and_refuses_the_rest() -> None:
    from portal.tenants.services import PhoneRefused, clean_phone

    assert clean_phone("138 0013 8000") == "13800138000"
    assert clean_phone("+86 13800138000") == "13800138000"
    assert clean_phone("(0571) 87654321") == "057187654321"
    assert clean_phone("0571-87654321") == "0571-87654321"
    assert clean_phone("400-123-4567") == "400-123-4567"
    assert clean_phone("  ") is None
    for bad in ("12345", "23800138000", "1380013800a", "https://x.example", "0571-123"):
        with pytest.raises(PhoneRefused):
            clean_phone(bad)


async def test_board_phone_is_opt_in(client: AsyncTestClient, database: Database, world: World) -> None:
    from tests.fixtures.factories import add_access_people

    await add_access_people(database, world)
    a = world.tenants["a"]
    assert "tel:" not in (await client.get(f"/board/{a.id}")).text  # nothing published by default

    await sign_in(client, world.users["staff_a"].login)
    refused = await post_form(client, f"/t/{a.id}/board/phone", {"phone": "13800138000"})
    assert refused.status_code == 403

    await sign_in(client, world.users["manager_a"].login)
    bad = await post_form(client, f"/t/{a.id}/board/phone", {"phone": "call me"})
    assert bad.status_code == 422 and zh(
        "Enter a mainland mobile number (11 digits), a landline with its area code (e.g. 0571-87654321) "
        "or a 400/800 number — or leave it empty to show none."
    ) in page_text(bad)
    async with database.session(Scope.tenant(a.id)) as s:
        assert (await s.get(Tenant, a.id)).public_phone is None  # type: ignore[union-attr]

    saved = await post_form(client, f"/t/{a.id}/board/phone", {"phone": "0571-87654321"})
    assert saved.status_code == 303
    client.cookies.clear()
    assert 'href="tel:0571-87654321"' in (await client.get(f"/board/{a.id}")).text
    await sign_in(client, world.users["manager_a"].login)
    cleared = await post_form(client, f"/t/{a.id}/board/phone", {"phone": ""})
    assert cleared.status_code == 303
    assert "tel:" not in (await client.get(f"/board/{a.id}")).text
