"""Signing the monthly report with a passkey: two JSON POSTs driven by ``static/js/passkeys.js``.

``…/sign/options`` checks that the report may be signed by this person *before* the device prompts, and
returns WebAuthn options whose challenge is the report's SHA-256; ``…/sign`` verifies the assertion and
signs. Refusals are JSON ``{message}`` (translated) that the page shows where the button is.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody

from portal.core.i18n import N_, _
from portal.core.problems import Problem
from portal.core.web import DB
from portal.identity import access
from portal.identity.ceremonies import CEREMONY_BODY_MAX, PasskeyError, take_ceremony
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.passkey_routes import passkey_error, pop_ceremony
from portal.identity.passkey_schemas import CredentialSubmission
from portal.identity.passkeys import SESSION_KEY
from portal.models.identity import User
from portal.models.selfcheck import SelfCheck
from portal.models.tenants import Tenant
from portal.selfcheck.monthly import services
from portal.selfcheck.reports import services as reports
from portal.selfcheck.signing import services as signing
from portal.tenants import services as tenant_services

SIGN_REFUSALS = {
    "not_submitted": N_("Submit the self-check before signing it."),
    "already_signed": N_("This report is already signed."),
    "only_responsible_signs": N_("Only the unit's responsible person can sign."),
    "report_changed": N_(
        "The stored report no longer matches what was submitted, so it cannot be signed. "
        "Please tell the platform's support."
    ),
    "changed": N_(
        "The stored document no longer matches what was prepared, so it cannot be signed. Prepare it again."
    ),
    "no_passkey": N_("You have no passkey yet. Add one on your passkeys page, then sign."),
    "no_responsible": N_("The unit has no responsible person yet: invite one first."),
    "not_prepared": N_("This year's commitment has not been prepared yet."),
}


def refusal(code: str, status: int = 409) -> Problem:
    """A signing the rules refuse, to raise: problem details with the translated reason."""
    return Problem(status, _(SIGN_REFUSALS[code]), code=code)


async def load_signer(db: DB, principal: CurrentPrincipal) -> User:
    me = require_principal(principal)
    user = await db.get(User, me.user_id)
    assert user is not None  # the principal dependency checked it
    return user


class ReportSigning(Controller):
    path = "/t/{tenant_id:uuid}/selfchecks/{selfcheck_id:uuid}/sign"
    include_in_schema = False
    # Any member may ask; the service refuses everyone but the responsible person with a clear message.
    opt = access.member()
    request_max_body_size = CEREMONY_BODY_MAX

    async def _report(
        self, db: DB, tenant_id: uuid.UUID, selfcheck_id: uuid.UUID
    ) -> tuple[Tenant, SelfCheck]:
        tenant = await tenant_services.get_tenant(db, tenant_id)
        sc = await services.load(db, selfcheck_id) if tenant else None
        if tenant is None or sc is None or sc.tenant_id != tenant.id:
            raise NotFoundException()
        return tenant, sc

    @post("/options", status_code=200)
    async def options(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        selfcheck_id: FromPath[uuid.UUID],
    ) -> Response[dict[str, Any]]:
        signer = await load_signer(db, principal)
        tenant, sc = await self._report(db, tenant_id, selfcheck_id)
        try:
            await reports.check_signable(db, sc, tenant, signer.id)
        except services.SelfCheckRefused as exc:
            raise refusal(exc.code, 403 if exc.code == "only_responsible_signs" else 409) from None
        credentials = await signing.signer_credentials(db, signer.id)
        if not credentials:
            raise refusal("no_passkey")
        options, ceremony = signing.signing_options(
            request.app.state.settings, reports.document_of(sc), credentials
        )
        request.session[SESSION_KEY] = ceremony.to_session()
        return Response({"publicKey": options})

    @post("/", status_code=200)
    async def sign(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        tenant_id: FromPath[uuid.UUID],
        selfcheck_id: FromPath[uuid.UUID],
        data: JSONBody[CredentialSubmission],
    ) -> Response[dict[str, Any]]:
        signer = await load_signer(db, principal)
        tenant, sc = await self._report(db, tenant_id, selfcheck_id)
        raw = pop_ceremony(request)
        try:
            await reports.check_signable(db, sc, tenant, signer.id)
            ceremony = take_ceremony(raw, signing.PURPOSE, binding=reports.document_of(sc).binding)
            await reports.sign_report(
                db,
                request.app.state.settings,
                ceremony,
                data.credential,
                sc=sc,
                tenant=tenant,
                signer=signer,
            )
        except services.SelfCheckRefused as exc:
            raise refusal(exc.code, 403 if exc.code == "only_responsible_signs" else 409) from None
        except PasskeyError as exc:
            raise passkey_error(exc) from None
        return Response({"redirect": f"/t/{tenant.id}/selfchecks/{sc.id}"})
