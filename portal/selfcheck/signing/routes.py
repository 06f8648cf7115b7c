"""The two JSON endpoints of signing a document with a passkey, one implementation for the monthly report
and the annual commitment (``static/js/passkeys.js`` drives them).

``…/sign/options`` checks that this person may sign the document *before* the device prompts, and returns
WebAuthn options whose challenge is the document's SHA-256; ``…/sign`` verifies the assertion and signs.
Refusals are problem details (``core.problems``) whose translated ``detail`` the page shows where the
button is. A document's own
routes only say how to check and sign it (:class:`Signable`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from litestar import Request, Response

from portal.core.errors import Refused
from portal.core.i18n import N_, _
from portal.core.problems import Problem
from portal.core.web import DB
from portal.identity.ceremonies import Ceremony, PasskeyError, take_ceremony
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.passkey_routes import passkey_error, pop_ceremony
from portal.identity.passkeys import SESSION_KEY
from portal.models.identity import User
from portal.selfcheck.signing import services as signing

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


def refusal(code: str) -> Problem:
    """A signing the rules refuse, to raise: problem details with the translated reason."""
    status = 403 if code == "only_responsible_signs" else 409
    return Problem(status, _(SIGN_REFUSALS[code]), code=code)


async def load_signer(db: DB, principal: CurrentPrincipal) -> User:
    me = require_principal(principal)
    user = await db.get(User, me.user_id)
    assert user is not None  # the principal dependency checked it
    return user


@dataclass(frozen=True)
class Signable:
    """One document, as both endpoints need it. ``check`` and ``sign`` raise :class:`Refused` (with a code
    of :data:`SIGN_REFUSALS`); ``sign`` also :class:`PasskeyError`."""

    document: Callable[[], signing.Document]
    check: Callable[[User], Awaitable[None]]
    sign: Callable[[Ceremony, Any, User], Awaitable[object]]
    done: str  # where the page goes once it is signed


async def start(request: Request, db: DB, signer: User, signable: Signable) -> Response[dict[str, Any]]:
    """The options of a signing ceremony over the document's hash, offering the signer's own passkeys."""
    try:
        await signable.check(signer)
        document = signable.document()
    except Refused as exc:
        raise refusal(exc.code) from None
    credentials = await signing.signer_credentials(db, signer.id)
    if not credentials:
        raise refusal("no_passkey")
    options, ceremony = signing.signing_options(request.app.state.settings, document, credentials)
    request.session[SESSION_KEY] = ceremony.to_session()
    return Response({"publicKey": options})


async def finish(
    request: Request, signer: User, credential: Any, signable: Signable
) -> Response[dict[str, Any]]:
    """Check the device's answer to the pending ceremony (once: it is popped first) and sign."""
    raw = pop_ceremony(request)
    try:
        await signable.check(signer)
        ceremony = take_ceremony(raw, signing.PURPOSE, binding=signable.document().binding)
        await signable.sign(ceremony, credential, signer)
    except Refused as exc:
        raise refusal(exc.code) from None
    except PasskeyError as exc:
        raise passkey_error(exc) from None
    return Response({"redirect": signable.done})
