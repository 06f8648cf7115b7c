"""The demo people's phones: each responsible person of a history tenant signs with a passkey of their own.

A phone is the software authenticator of ``softauthn.py``; its passkey is registered through the passkey
services, and every signature goes through the same signing services — and the same WebAuthn verification —
as a real phone's in the browser. The private keys live only for the seeding run: the demo's signatures stay
verifiable (the public keys are stored), but nobody can sign in with these passkeys afterwards.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from portal.config import Settings
from portal.demo.softauthn import SoftAuthenticator
from portal.identity import passkeys
from portal.identity.ceremonies import Ceremony
from portal.models.identity import User
from portal.models.selfcheck import Commitment, Signature
from portal.models.tenants import Tenant
from portal.selfcheck.commitments import services as commitments
from portal.selfcheck.monthly import services as sc_services
from portal.selfcheck.reports import services as reports
from portal.selfcheck.signing import services as signing

PHONE_NAME = "演示手机 (demo phone)"


class DemoPhones:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._phones: dict[uuid.UUID, SoftAuthenticator] = {}

    async def phone_of(self, session: AsyncSession, user: User) -> SoftAuthenticator:
        """The person's phone, with its passkey registered on first use."""
        phone = self._phones.get(user.id)
        if phone is None:
            phone = SoftAuthenticator(origin=self.settings.base_url, rp_id=self.settings.rp_id)
            options, ceremony = passkeys.registration_options(
                self.settings,
                user_id=user.id,
                user_name=user.login,
                display_name=user.display_name,
                rp_name="示例市消防安全自主管理平台",
            )
            credential = passkeys.verify_registration(self.settings, ceremony, phone.create(options))
            await passkeys.add_passkey(session, credential, name=PHONE_NAME)
            self._phones[user.id] = phone
        return phone

    async def _assertion(
        self, session: AsyncSession, user: User, document: signing.Document
    ) -> tuple[Ceremony, dict[str, Any]]:
        phone = await self.phone_of(session, user)
        credentials = await signing.signer_credentials(session, user.id)
        options, ceremony = signing.signing_options(self.settings, document, credentials)
        return ceremony, phone.get(options)

    async def sign_report(
        self, session: AsyncSession, selfcheck_id: uuid.UUID, tenant: Tenant, user: User, at: datetime
    ) -> Signature:
        sc = await sc_services.load(session, selfcheck_id)
        assert sc is not None
        ceremony, credential = await self._assertion(session, user, reports.document_of(sc))
        return await reports.sign_report(
            session,
            self.settings,
            ceremony,
            credential,
            sc=sc,
            tenant=tenant,
            signer=user,
            now=at,
        )

    async def commit_for_year(
        self, session: AsyncSession, tenant: Tenant, manager: User, responsible: User, year: int, at: datetime
    ) -> Commitment:
        """The manager prepares the year's commitment; the responsible person signs it an hour later."""
        c = await commitments.prepare(session, tenant, year=year, prepared_by=manager.id, now=at)
        ceremony, credential = await self._assertion(session, responsible, commitments.document_of(c))
        await commitments.sign_commitment(
            session,
            self.settings,
            ceremony,
            credential,
            commitment=c,
            tenant=tenant,
            signer=responsible,
            now=at + timedelta(hours=1),
        )
        return c
