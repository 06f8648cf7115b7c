"""Invitations on both databases: who may invite what, the one-time link and its QR code, accepting with a
passkey (person + role + passkey + accepted mark in one transaction), recovery, and every refusal with a
translated message and nothing changed."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select
from webauthn.helpers import bytes_to_base64url

from portal.config import Settings
from portal.core.db import Database
from portal.core.tenancy import Scope
from portal.demo.softauthn import SoftAuthenticator
from portal.grid import services as grid_services
from portal.identity import passkeys
from portal.identity.passkey_routes import MESSAGES
from portal.identity.principal import Context, ContextKind, contexts_for
from portal.invitations import acceptance as invitation_acceptance
from portal.invitations import recovery as invitation_recovery
from portal.invitations import services as invitations
from portal.invitations.routes import ERRORS
from portal.models.audit import AuditEntry
from portal.models.grid import Committee, CommitteeStaff, WardenAssignment
from portal.models.identity import Passkey, User
from portal.models.insurer import InsurerUser
from portal.models.notify import Notification
from portal.models.tenants import (
    Invitation,
    InvitationKind,
    MemberRole,
    Membership,
    RegulatorAssignment,
)
from portal.tenants import services as ts
from tests.fixtures.factories import World, add_person
from tests.fixtures.web import post_form, sign_in
from tests.identity.helpers import give_passkey, page_text, post_json, session_of, zh

LINK = re.compile(r"/invite/([A-Za-z0-9_-]{43})\b")


def soft_for(settings: Settings) -> SoftAuthenticator:
    return SoftAuthenticator(origin=settings.base_url, rp_id=settings.rp_id)


async def member_side(database: Database, world: World, key: str = "a") -> invitations.Side:
    tenant = world.tenants[key]
    async with database.session(Scope.tenant(tenant.id)) as s:
        return await invitations.side_of(
            s, world.users[f"manager_{key}"].id, Context(ContextKind.MEMBER, str(tenant.id), "")
        )


async def invite_member(
    database: Database,
    world: World,
    key: str = "a",
    *,
    name: str = "张三",
    role: MemberRole = MemberRole.STAFF,
    now: datetime | None = None,
) -> invitations.NewInvitation:
    side = await member_side(database, world, key)
    async with database.session(Scope.tenant(world.tenants[key].id)) as s:
        return await invitations.create_invitation(
            s, side, invitee_name=name, kind=InvitationKind.MEMBER, member_role=role, now=now
        )


async def accept_via_services(
    database: Database, settings: Settings, token: str, name: str, soft: SoftAuthenticator
) -> invitation_acceptance.Accepted:
    async with database.session(None) as s:
        who = await invitation_acceptance.begin_acceptance(s, token, display_name=name)
    options, ceremony = passkeys.registration_options(
        settings,
        user_id=who.user_id,
        user_name=who.user_name,
        display_name=who.display_name,
        rp_name="portal",
        binding=f"invite:{who.token_hash}",
    )
    credential = passkeys.verify_registration(settings, ceremony, soft.create(options))
    async with database.session(None) as s:
        return await invitation_acceptance.accept_with_passkey(
            s, token, credential, display_name=who.display_name, passkey_name="手机"
        )


async def users_named(database: Database, name: str) -> int:
    async with database.session(Scope.system("test")) as s:
        return int(
            (
                await s.execute(select(func.count()).select_from(User).where(User.display_name == name))
            ).scalar_one()
        )


async def invitation_row(database: Database, invitation_id: uuid.UUID) -> Invitation:
    async with database.session(Scope.system("test")) as s:
        row = await s.get(Invitation, invitation_id)
        assert row is not None
        return row


async def roles_of(database: Database, user_id: uuid.UUID) -> set[str]:
    async with database.session(Scope.system("test")) as s:
        return {c.token for c in await contexts_for(s, user_id)}


# -- the whole way over HTTP --------------------------------------------------------------------------


async def test_manager_invites_staff_who_joins_with_a_passkey_and_signs_in_again(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    a = world.tenants["a"]
    await sign_in(client, world.users["manager_a"].login)
    form = await client.get("/invitations")
    assert form.status_code == 200 and zh("Invite someone to this unit") in page_text(form)

    created = await post_form(
        client, "/invitations", {"kind": "member", "invitee_name": " 张三 ", "member_role": "staff"}
    )
    assert created.status_code == 200
    assert created.headers["cache-control"] == "no-store"
    text = page_text(created)
    found = LINK.search(text)
    assert found is not None and f"{settings.base_url}/invite/{found.group(1)}" in text
    token = found.group(1)
    assert '<svg role="img"' in created.text and zh("QR code of the invitation link") in text
    assert zh("%(role)s of %(place)s", role=zh("staff"), place="测试单位a") in text

    # Only the hash is kept: the link is never shown again.
    async with database.session(Scope.system("test")) as s:
        row = (
            await s.execute(
                select(Invitation).where(Invitation.invitee_name == "张三", Invitation.tenant_id == a.id)
            )
        ).scalar_one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in repr(vars(row))
    assert row.expires_at - row.created_at >= invitations.INVITATION_TTL - timedelta(seconds=5)
    listing = await client.get("/invitations")
    assert "张三" in listing.text and token not in listing.text and zh("waiting") in page_text(listing)

    # The invitee opens the link on their own phone (signed out).
    await post_form(client, "/signout", {})
    opened = await client.get(f"/invite/{token}")
    text = page_text(opened)
    assert opened.status_code == 200 and opened.headers["referrer-policy"] == "no-referrer"
    assert zh("You are invited") in text and "管理人a" in text and 'value="张三"' in opened.text
    assert zh("%(role)s of %(place)s", role=zh("staff"), place="测试单位a") in text

    soft = soft_for(settings)
    empty = await post_json(client, f"/invite/{token}/options", {"display_name": "  "})
    assert empty.status_code == 400 and empty.json()["detail"] == zh(ERRORS["name"])
    options = (await post_json(client, f"/invite/{token}/options", {"display_name": "张三丰"})).json()[
        "publicKey"
    ]
    assert options["user"]["name"] == "张三丰"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    done = await post_json(client, f"/invite/{token}/accept", {"credential": soft.create(options)})
    assert done.status_code == 200, done.text
    assert done.json() == {"redirect": f"/t/{a.id}"}

    session = await session_of(client, database)
    async with database.session(Scope.system("test")) as s:
        user = (await s.execute(select(User).where(User.display_name == "张三丰"))).scalar_one()
        membership = (await s.execute(select(Membership).where(Membership.user_id == user.id))).scalar_one()
        keys = (await s.execute(select(Passkey).where(Passkey.user_id == user.id))).scalars().all()
        accepted = await s.get(Invitation, row.id)
        audit_rows = (
            (
                await s.execute(
                    select(AuditEntry.action)
                    .where(AuditEntry.object_id == str(row.id))
                    .order_by(AuditEntry.seq)
                )
            )
            .scalars()
            .all()
        )
    assert (
        session["uid"] == str(user.id)
        and session["ctx"] == f"member:{a.id}"
        and session["method"] == "invitation"
    )
    assert (membership.tenant_id, membership.role) == (a.id, MemberRole.STAFF)
    assert len(keys) == 1 and keys[0].user_id == user.id
    assert accepted is not None and accepted.accepted_at is not None and accepted.accepted_by_id == user.id
    assert list(audit_rows) == ["invitation.created", "invitation.accepted"]
    home = await client.get(f"/t/{a.id}")
    assert home.status_code == 200 and "张三丰" in home.text

    # The link is spent: the page says so, and a new ceremony is refused.
    again = await client.get(f"/invite/{token}")
    assert again.status_code == 410 and zh(ERRORS["accepted"]) in page_text(again)
    refused = await post_json(client, f"/invite/{token}/options", {"display_name": "冒名者"})
    assert refused.status_code == 410 and refused.json()["detail"] == zh(ERRORS["accepted"])
    assert await users_named(database, "冒名者") == 0

    # Later, on the same phone: sign in with the passkey alone.
    await post_form(client, "/signout", {})
    options = (await post_json(client, "/signin/passkey/options")).json()["publicKey"]
    back = await post_json(client, "/signin/passkey", {"credential": soft.get(options)})
    assert back.status_code == 200 and back.json() == {"redirect": f"/t/{a.id}"}
    assert (await session_of(client, database))["uid"] == str(user.id)


async def test_expired_revoked_and_unknown_links_say_so_and_change_nothing(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    old = await invite_member(database, world, name="过期的人", now=datetime.now(UTC) - timedelta(days=8))
    page = await client.get(f"/invite/{old.token}")
    assert page.status_code == 410 and zh(ERRORS["expired"]) in page_text(page)
    assert "管理人a" in page_text(page)  # who to ask for a new one
    refused = await post_json(client, f"/invite/{old.token}/options", {"display_name": "过期的人"})
    assert refused.status_code == 410 and refused.json()["detail"] == zh(ERRORS["expired"])

    # Revoked by the manager, even after the invitee started creating a passkey.
    new = await invite_member(database, world, name="被撤回的人")
    options = (
        await post_json(client, f"/invite/{new.token}/options", {"display_name": "被撤回的人"})
    ).json()["publicKey"]
    # The manager withdraws it from her own browser (other cookies), then the invitee's answer arrives.
    invitee_cookies = dict(client.cookies)
    client.cookies.clear()
    await sign_in(client, world.users["manager_a"].login)
    gone = await post_form(client, f"/invitations/{new.invitation.id}/revoke", {})
    assert gone.status_code == 303
    assert zh("withdrawn") in page_text(await client.get("/invitations"))
    client.cookies.clear()
    client.cookies.update(invitee_cookies)
    late = await post_json(
        client, f"/invite/{new.token}/accept", {"credential": soft_for(settings).create(options)}
    )
    assert late.status_code == 410 and late.json()["detail"] == zh(ERRORS["revoked"])
    page = await client.get(f"/invite/{new.token}")
    assert page.status_code == 410 and zh(ERRORS["revoked"]) in page_text(page)
    assert (await invitation_row(database, new.invitation.id)).accepted_at is None

    unknown = await client.get("/invite/" + "x" * 43)
    assert unknown.status_code == 404 and zh(ERRORS["unknown"]) in page_text(unknown)
    assert (await post_json(client, "/invite/nope/options", {"display_name": "某人"})).status_code == 404
    for name in ("过期的人", "被撤回的人", "某人"):
        assert await users_named(database, name) == 0


async def test_a_link_is_accepted_once_even_with_two_ceremonies_under_way(
    database: Database, settings: Settings, world: World
) -> None:
    new = await invite_member(database, world, name="抢先的人")
    # Two phones both opened the link and created passkeys; only the first answer wins.
    ceremonies = []
    for name in ("抢先的人", "晚到的人"):
        async with database.session(None) as s:
            who = await invitation_acceptance.begin_acceptance(s, new.token, display_name=name)
        options, ceremony = passkeys.registration_options(
            settings,
            user_id=who.user_id,
            user_name=name,
            display_name=name,
            rp_name="p",
            binding=f"invite:{who.token_hash}",
        )
        ceremonies.append(
            (name, passkeys.verify_registration(settings, ceremony, soft_for(settings).create(options)))
        )
    async with database.session(None) as s:
        first = await invitation_acceptance.accept_with_passkey(
            s, new.token, ceremonies[0][1], display_name=ceremonies[0][0], passkey_name="手机"
        )
    with pytest.raises(invitations.InvitationError) as err:
        async with database.session(None) as s:
            await invitation_acceptance.accept_with_passkey(
                s, new.token, ceremonies[1][1], display_name=ceremonies[1][0], passkey_name="手机"
            )
    assert err.value.code == "accepted"
    assert await users_named(database, "晚到的人") == 0
    assert await roles_of(database, first.user.id) == {f"member:{world.tenants['a'].id}"}


async def test_a_ceremony_belongs_to_its_own_link(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    x = await invite_member(database, world, name="甲")
    y = await invite_member(database, world, name="乙", role=MemberRole.MANAGER)
    options = (await post_json(client, f"/invite/{x.token}/options", {"display_name": "甲"})).json()[
        "publicKey"
    ]
    # The answer made for link x, posted to link y (which grants more): refused, nothing accepted.
    crossed = await post_json(
        client, f"/invite/{y.token}/accept", {"credential": soft_for(settings).create(options)}
    )
    assert crossed.status_code == 400 and crossed.json()["detail"] == zh(MESSAGES["challenge"])
    for inv in (x, y):
        assert (await invitation_row(database, inv.invitation.id)).accepted_at is None
    # A registration without user verification is refused with its own message.
    options = (await post_json(client, f"/invite/{x.token}/options", {"display_name": "甲"})).json()[
        "publicKey"
    ]
    no_uv = await post_json(
        client,
        f"/invite/{x.token}/accept",
        {"credential": soft_for(settings).create(options, user_verified=False)},
    )
    assert no_uv.status_code == 400 and no_uv.json()["detail"] == zh(MESSAGES["user_verification"])
    options = (await post_json(client, f"/invite/{x.token}/options", {"display_name": "甲"})).json()[
        "publicKey"
    ]
    foreign = await post_json(
        client,
        f"/invite/{x.token}/accept",
        {"credential": soft_for(settings).create(options, origin="https://phish.example")},
    )
    assert foreign.status_code == 400 and foreign.json()["detail"] == zh(MESSAGES["origin"])
    assert (await invitation_row(database, x.invitation.id)).accepted_at is None
    assert await users_named(database, "甲") == 0


# -- who may invite -----------------------------------------------------------------------------------


async def test_staff_regulators_and_wardens_cannot_invite(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    a, b = world.tenants["a"], world.tenants["b"]
    await sign_in(client, world.users["both"].login, ctx=f"member:{b.id}")  # staff in b
    page = await client.get("/invitations")
    assert page.status_code == 403 and zh(ERRORS["not_allowed"]) not in ("",)
    refused = await post_form(
        client, "/invitations", {"kind": "member", "invitee_name": "偷偷邀请", "member_role": "manager"}
    )
    assert refused.status_code == 403
    async with database.session(Scope.system("test")) as s:
        count = (
            await s.execute(select(func.count()).select_from(Invitation).where(Invitation.tenant_id == b.id))
        ).scalar_one()
    assert count == 0
    # The same person is the responsible person of a: there they may invite.
    await post_form(client, "/switch", {"ctx": f"member:{a.id}"})
    assert (await client.get("/invitations")).status_code == 200
    for who in ("regulator", "warden", "insurer"):
        await sign_in(client, world.users[who].login)
        assert (await client.get("/invitations")).status_code == 403


async def test_another_tenants_invitation_answers_404(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    theirs = await invite_member(database, world, "b", name="乙方员工")
    await sign_in(client, world.users["manager_a"].login)
    assert "乙方员工" not in (await client.get("/invitations")).text
    for target in (theirs.invitation.id, uuid.uuid4()):
        assert (await post_form(client, f"/invitations/{target}/revoke", {})).status_code == 404
    row = await invitation_row(database, theirs.invitation.id)
    assert row.revoked_at is None and invitations.status_of(row) == "pending"
    # A foreign person for recovery: the same answer.
    refused = await post_form(client, "/invitations/recovery", {"user_id": str(world.users["manager_b"].id)})
    assert refused.status_code == 404


async def test_committee_invites_wardens_for_its_own_grids_only(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    grid_a, grid_b = world.grids["a"], world.grids["b"]
    async with database.session(Scope.system("test")) as s:
        committee = await s.get(Committee, grid_a.committee_id)
        assert committee is not None
        staff = await ts.create_user(s, login=f"cm.{uuid.uuid4().hex[:8]}", display_name="居委会干部")
        await grid_services.add_committee_staff(s, committee, staff)
    await sign_in(client, staff.login, ctx=f"committee:{committee.id}")
    page = await client.get("/invitations")
    assert page.status_code == 200 and zh("Invite a grid warden") in page_text(page)
    assert "a网格" in page.text and "b网格" not in page.text

    other_grid = await post_form(
        client, "/invitations", {"kind": "warden", "invitee_name": "新网格员", "grid_id": str(grid_b.id)}
    )
    assert other_grid.status_code == 400 and zh(ERRORS["grid"]) in page_text(other_grid)
    member = await post_form(
        client, "/invitations", {"kind": "member", "invitee_name": "x", "member_role": "staff"}
    )
    assert member.status_code == 403
    created = await post_form(
        client, "/invitations", {"kind": "warden", "invitee_name": "新网格员", "grid_id": str(grid_a.id)}
    )
    assert created.status_code == 200 and zh("Grid warden of %(grid)s", grid="a网格") in page_text(created)
    found = LINK.search(created.text)
    assert found is not None
    accepted = await accept_via_services(database, settings, found.group(1), "新网格员", soft_for(settings))
    assert accepted.context_token == "warden:"
    async with database.session(Scope.system("test")) as s:
        grids = (
            (
                await s.execute(
                    select(WardenAssignment.grid_id).where(WardenAssignment.user_id == accepted.user.id)
                )
            )
            .scalars()
            .all()
        )
    assert list(grids) == [grid_a.id]


async def _admin(database: Database) -> tuple[User, invitations.Side]:
    async with database.session(Scope.system("test")) as s:
        admin = await ts.create_user(
            s, login=f"adm.{uuid.uuid4().hex[:8]}", display_name="平台管理员", is_platform_admin=True
        )
        side = await invitations.side_of(s, admin.id, Context(ContextKind.ADMIN, "", ""))
    return admin, side


async def test_platform_admin_invites_regulators_committee_staff_insurers_and_admins(
    database: Database, settings: Settings, world: World
) -> None:
    _admin_user, side = await _admin(database)
    assert world.insurer is not None
    committee_id = world.grids["c"].committee_id
    async with database.session(None) as s:
        for kwargs, code in (
            ({"kind": InvitationKind.REGULATOR, "jurisdiction_id": world.d1.id, "org_name": " "}, "org_name"),
            (
                {"kind": InvitationKind.REGULATOR, "jurisdiction_id": uuid.uuid4(), "org_name": "大队"},
                "jurisdiction",
            ),
            ({"kind": InvitationKind.COMMITTEE, "committee_id": uuid.uuid4()}, "committee"),
            ({"kind": InvitationKind.INSURER}, "insurer"),
            ({"kind": InvitationKind.MEMBER, "member_role": MemberRole.MANAGER}, "not_allowed"),
            ({"kind": InvitationKind.WARDEN, "grid_id": world.grids["a"].id}, "not_allowed"),
        ):
            with pytest.raises(invitations.InvitationError) as err:
                await invitations.create_invitation(s, side, invitee_name="某人", **kwargs)
            assert err.value.code == code
        made = {
            "regulator": await invitations.create_invitation(
                s,
                side,
                invitee_name="监管新人",
                kind=InvitationKind.REGULATOR,
                jurisdiction_id=world.d1.id,
                org_name="一区消防救援大队",
            ),
            "committee": await invitations.create_invitation(
                s, side, invitee_name="居委新人", kind=InvitationKind.COMMITTEE, committee_id=committee_id
            ),
            "insurer": await invitations.create_invitation(
                s, side, invitee_name="保险新人", kind=InvitationKind.INSURER, insurer_id=world.insurer.id
            ),
            "admin": await invitations.create_invitation(
                s, side, invitee_name="管理新人", kind=InvitationKind.ADMIN
            ),
        }
        listed = await invitations.list_invitations(s, side)
    assert {v.invitation.id for v in listed} >= {n.invitation.id for n in made.values()}

    users = {}
    for key, new in made.items():
        accepted = await accept_via_services(
            database, settings, new.token, new.invitation.invitee_name, soft_for(settings)
        )
        users[key] = accepted.user.id
    assert await roles_of(database, users["regulator"]) == {f"regulator:{world.d1.id}"}
    assert await roles_of(database, users["committee"]) == {f"committee:{committee_id}"}
    assert await roles_of(database, users["insurer"]) == {f"insurer:{world.insurer.id}"}
    assert await roles_of(database, users["admin"]) == {"admin:"}
    async with database.session(Scope.system("test")) as s:
        office = (
            await s.execute(
                select(RegulatorAssignment.org_name_zh).where(
                    RegulatorAssignment.user_id == users["regulator"]
                )
            )
        ).scalar_one()
        assert office == "一区消防救援大队"
        assert (
            await s.execute(select(CommitteeStaff.id).where(CommitteeStaff.user_id == users["committee"]))
        ).first()
        assert (
            await s.execute(select(InsurerUser.id).where(InsurerUser.user_id == users["insurer"]))
        ).first()


async def test_admin_pages_over_http(client: AsyncTestClient, database: Database, world: World) -> None:
    admin, _side = await _admin(database)
    await sign_in(client, admin.login)
    page = await client.get("/invitations")
    text = page_text(page)
    assert page.status_code == 200
    for heading in (
        "Invite a regulator",
        "Invite residents' committee staff",
        "Invite an insurer's user",
        "Invite a platform administrator",
    ):
        assert zh(heading) in text
    bad = await post_form(
        client,
        "/invitations",
        {"kind": "regulator", "invitee_name": "某监管员", "jurisdiction_id": str(world.d1.id)},
    )
    assert bad.status_code == 400 and zh(ERRORS["org_name"]) in page_text(bad)
    ok = await post_form(
        client,
        "/invitations",
        {
            "kind": "regulator",
            "invitee_name": "某监管员",
            "jurisdiction_id": str(world.d1.id),
            "org_name": "一区大队",
        },
    )
    assert ok.status_code == 200 and LINK.search(ok.text)
    granted = zh("Regulator at %(office)s, supervising %(place)s", office="一区大队", place="一区")
    assert granted in page_text(ok)
    # The platform recovers a person whose roles span two units (which neither unit may do), by login.
    both = world.users["both"]
    recovered = await post_form(client, "/invitations/recovery", {"login": both.login})
    assert recovered.status_code == 200
    assert zh("A new passkey for %(name)s (account recovery)", name=both.display_name) in page_text(recovered)
    assert (await post_form(client, "/invitations/recovery", {"login": "nobody.here"})).status_code == 404
    assert (await post_form(client, "/invitations/recovery", {"login": admin.login})).status_code == 404


# -- recovery and joining with an existing account -----------------------------------------------------


async def test_recovery_adds_a_passkey_and_can_void_the_old_ones(
    client: AsyncTestClient, database: Database, settings: Settings, world: World
) -> None:
    a = world.tenants["a"]
    lost = await add_person(database, a.id, MemberRole.STAFF, "丢手机的人")
    old_phone = soft_for(settings)
    old_key = await give_passkey(database, settings, lost.id, old_phone)

    await sign_in(client, world.users["manager_a"].login)
    listing = await client.get("/invitations")
    assert "丢手机的人" in listing.text
    # A person who also holds a role in another unit is recovered by the platform, not by this unit.
    elsewhere = await post_form(client, "/invitations/recovery", {"user_id": str(world.users["both"].id)})
    assert elsewhere.status_code == 400 and zh(ERRORS["roles_elsewhere"]) in page_text(elsewhere)

    created = await post_form(client, "/invitations/recovery", {"user_id": str(lost.id), "revoke_old": "yes"})
    assert created.status_code == 200
    assert zh("A new passkey for %(name)s (account recovery)", name="丢手机的人") in page_text(created)
    found = LINK.search(created.text)
    assert found is not None
    token = found.group(1)
    async with database.session(Scope.system("test")) as s:
        user = await s.get(User, lost.id)
        old = await s.get(Passkey, old_key)
        assert user is not None and user.sessions_valid_after is not None
        assert old is not None and old.revoked_at is not None
        # With the recovery pending, the person could revoke even a last passkey.
        assert await passkeys.other_way_in(s, lost.id)

    # The old phone no longer signs in.
    await post_form(client, "/signout", {})
    options = (await post_json(client, "/signin/passkey/options")).json()["publicKey"]
    refused = await post_json(client, "/signin/passkey", {"credential": old_phone.get(options)})
    assert refused.status_code == 400 and refused.json()["code"] == "unknown_credential"

    opened = await client.get(f"/invite/{token}")
    assert opened.status_code == 200 and zh("Add a passkey to your account") in page_text(opened)
    new_phone = soft_for(settings)
    options = (await post_json(client, f"/invite/{token}/options", {"display_name": "别的名字"})).json()[
        "publicKey"
    ]
    assert options["user"]["id"] == bytes_to_base64url(lost.id.bytes)  # the existing account
    assert options["user"]["name"] == "丢手机的人"
    done = await post_json(client, f"/invite/{token}/accept", {"credential": new_phone.create(options)})
    assert done.status_code == 200 and done.json() == {"redirect": f"/t/{a.id}"}
    assert (await session_of(client, database))["uid"] == str(lost.id)
    assert await users_named(database, "别的名字") == 0
    assert await roles_of(database, lost.id) == {f"member:{a.id}"}
    async with database.session(Scope.system("test")) as s:
        active = await passkeys.list_passkeys(s, lost.id)
    assert len(active) == 1 and active[0].id != old_key


async def test_a_signed_in_person_takes_the_role_with_their_own_account(
    client: AsyncTestClient, database: Database, world: World
) -> None:
    b = world.tenants["b"]
    new = await invite_member(database, world, "b", name="网格员兼员工")
    warden = world.users["warden"]
    await sign_in(client, warden.login)
    page = await client.get(f"/invite/{new.token}")
    assert page.status_code == 200 and zh("Add this role to your account") in page_text(page)
    joined = await post_form(client, f"/invite/{new.token}/join", {})
    assert joined.status_code == 303 and joined.headers["location"] == f"/t/{b.id}"
    assert await roles_of(database, warden.id) == {"warden:", f"member:{b.id}"}
    assert (await client.get(f"/t/{b.id}")).status_code == 200
    # A second invitation for the very same role: already held, nothing changes.
    twice = await invite_member(database, world, "b", name="网格员兼员工")
    again = await post_form(client, f"/invite/{twice.token}/join", {})
    assert again.status_code == 400 and zh(ERRORS["already_holds"]) in page_text(again)
    assert (await invitation_row(database, twice.invitation.id)).accepted_at is None


# -- nobody grants a role above their own --------------------------------------------------------------


async def test_a_manager_cannot_invite_a_responsible_person_above_them(
    database: Database, world: World
) -> None:
    """Tenant a has a responsible person ("both"): its manager may invite staff and managers, not a second
    responsible person; the form offers only what the rule allows."""
    side = await member_side(database, world, "a")
    async with database.session(Scope.tenant(world.tenants["a"].id)) as s:
        assert await invitations.grantable_roles(s, side) == [MemberRole.MANAGER, MemberRole.STAFF]
        with pytest.raises(invitations.InvitationError) as refused:
            await invitations.create_invitation(
                s, side, invitee_name="我自己", kind=InvitationKind.MEMBER, member_role=MemberRole.RESPONSIBLE
            )
        assert refused.value.code == "role_above_yours"
    for role in (MemberRole.MANAGER, MemberRole.STAFF):
        assert (await invite_member(database, world, "a", role=role)).invitation.member_role is role


async def test_a_manager_names_the_first_responsible_person_but_cannot_become_it(
    database: Database, world: World
) -> None:
    """Tenant b has no responsible person: its manager may invite one, for someone else. Accepting that
    invitation with the manager's own account is refused and changes nothing."""
    manager = world.users["manager_b"]
    new = await invite_member(database, world, "b", name="新责任人", role=MemberRole.RESPONSIBLE)
    async with database.session(None) as s:
        with pytest.raises(invitations.InvitationError) as refused:
            await invitation_acceptance.accept_signed_in(s, new.token, manager.id)
        assert refused.value.code == "own_invitation"
    assert f"member:{world.tenants['b'].id}" in await roles_of(database, manager.id)
    async with database.session(Scope.tenant(world.tenants["b"].id)) as s:
        assert await ts.roles_of(s, world.tenants["b"].id, manager.id) == {MemberRole.MANAGER}
    assert (await invitation_row(database, new.invitation.id)).accepted_at is None


async def test_nobody_recovers_the_account_of_someone_above_them(database: Database, world: World) -> None:
    """A unit whose only people are its responsible person and its manager: the manager may not make a
    recovery link for the responsible person (it would give them the responsible person's passkey and role);
    the responsible person may make one for the manager, who is told at once, in the inbox."""
    tenant = world.tenants["c"]
    boss = await add_person(database, tenant.id, MemberRole.RESPONSIBLE, "丙责任人")
    manager = world.users["manager_c"]

    async def side(user_id: uuid.UUID) -> invitations.Side:
        async with database.session(Scope.tenant(tenant.id)) as s:
            return await invitations.side_of(s, user_id, Context(ContextKind.MEMBER, str(tenant.id), ""))

    async def contexts(user_id: uuid.UUID) -> list[Context]:
        async with database.session(Scope.system("test")) as s:
            return await contexts_for(s, user_id)

    manager_side = await side(manager.id)
    async with database.session(Scope.tenant(tenant.id)) as s:
        assert boss.id not in {p.user_id for p in await invitation_recovery.people_of(s, manager_side)}
        with pytest.raises(invitations.InvitationError) as refused:
            await invitation_recovery.create_recovery(
                s, manager_side, user_id=boss.id, roles=await contexts(boss.id)
            )
        assert refused.value.code == "role_above_yours"
    async with database.session(Scope.system("test")) as s:
        assert (
            await s.execute(
                select(func.count()).select_from(Notification).where(Notification.user_id == boss.id)
            )
        ).scalar_one() == 0
        assert (
            await s.execute(
                select(func.count()).select_from(Invitation).where(Invitation.for_user_id == boss.id)
            )
        ).scalar_one() == 0
    boss_side = await side(boss.id)
    async with database.session(Scope.tenant(tenant.id)) as s:
        new = await invitation_recovery.create_recovery(
            s, boss_side, user_id=manager.id, roles=await contexts(manager.id)
        )
    async with database.session(Scope.system("test")) as s:
        told = (
            (await s.execute(select(Notification).where(Notification.user_id == manager.id))).scalars().all()
        )
        assert [n.kind for n in told] == ["account.recovery_made"]
        assert "丙责任人" in told[0].body and told[0].link == "/account/passkeys"
        recorded = (
            (
                await s.execute(
                    select(AuditEntry).where(
                        AuditEntry.action == "invitation.recovery_created",
                        AuditEntry.object_id == str(new.invitation.id),
                    )
                )
            )
            .scalars()
            .all()
        )
        assert len(recorded) == 1
