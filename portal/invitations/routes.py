"""Invitation pages: the inviter's list and forms (``/invitations``) and the invitee's link (``/invite/…``).

Parse, find the inviter's side from the active role, call ``invitations``, render. The link and its QR
code are shown once, on the answer to the form that made them (only a hash is stored).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import segno
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import Body, FromPath, JSONBody
from litestar.response import Redirect, Template
from markupsafe import Markup

from portal.core.i18n import N_, _
from portal.core.problems import Problem
from portal.core.web import DB, page
from portal.identity import access, passkeys
from portal.identity import services as identity
from portal.identity.ceremonies import CEREMONY_BODY_MAX
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.passkey_routes import default_passkey_name, passkey_error, pop_ceremony
from portal.identity.passkey_schemas import CredentialSubmission, OptionsRequest
from portal.identity.principal import Context, ContextKind, Principal
from portal.identity.routes import home_of
from portal.identity.sessions import start_session
from portal.invitations import acceptance as invitation_acceptance
from portal.invitations import policies
from portal.invitations import recovery as invitation_recovery
from portal.invitations import services as invitations
from portal.invitations.schemas import InviteForm, RecoveryForm
from portal.models.identity import User
from portal.models.tenants import InvitationKind, MemberRole

FORM = Body(media_type=RequestEncodingType.URL_ENCODED)

NOT_ALLOWED = N_("Your role does not invite people here.")
ERRORS = {
    "not_allowed": NOT_ALLOWED,
    "name": N_("Enter the person's name (at most 120 characters)."),
    "role": N_("Choose the role to grant."),
    "grid": N_("Choose one of your committee's grids."),
    "committee": N_("Choose a residents' committee."),
    "jurisdiction": N_("Choose the jurisdiction the regulator supervises."),
    "insurer": N_("Choose an insurer."),
    "org_name": N_("Enter the office's name (at most 200 characters)."),
    "roles_elsewhere": N_(
        "This person also holds roles outside your unit or committee. "
        "Ask a platform administrator for their recovery invitation."
    ),
    "already_holds": N_("You already hold this role."),
    "role_above_yours": N_(
        "Nobody gives a role above their own, or recovers the account of someone above them."
    ),
    "own_invitation": N_("This invitation is for someone else: you cannot accept an invitation you sent."),
    "expired": N_("This invitation has expired. Ask whoever invited you for a new one."),
    "accepted": N_(
        "This invitation was already used: each invitation works once. "
        "If it was not you who used it, tell whoever invited you."
    ),
    "revoked": N_("This invitation was withdrawn by whoever sent it. Ask them for a new one if needed."),
    "unknown": N_(
        "This invitation link is not valid. Check that you copied all of it, or ask for a new one."
    ),
}
# Answers of a link that cannot be used: 404 when there is none, 410 (gone) when it was but is no more.
UNUSABLE_STATUS = {"unknown": 404, "expired": 410, "accepted": 410, "revoked": 410}


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def qr_svg(url: str, title: str) -> Markup:
    """The link as an inline SVG QR code (segno), named for screen readers."""
    svg = segno.make(url, error="m").svg_inline(scale=5, border=4, title=title, dark="#000", light="#fff")
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S704  (segno's own markup)


async def _side(db: DB, principal: Principal | None) -> invitations.Side:
    me = require_principal(principal)
    try:
        return await invitations.side_of(db, me.user_id, me.context)
    except invitations.InvitationError as exc:
        raise PermissionDeniedException(detail=_(NOT_ALLOWED)) from exc


class InvitationPages(Controller):
    """The inviter's side."""

    path = "/invitations"
    include_in_schema = False
    opt = policies.INVITERS

    async def _list_page(
        self,
        request: Request,
        db: DB,
        side: invitations.Side,
        *,
        error: str | None = None,
        error_form: str = "",
        form: InviteForm | None = None,
        status: int = 200,
    ) -> Template:
        choices = await invitations.platform_choices(db) if side.kind is ContextKind.ADMIN else None
        return page(
            request,
            "invitations/list.html",
            status_code=status,
            side=side,
            invitations=await invitations.list_invitations(db, side),
            people=await invitation_recovery.people_of(db, side),
            grids=await invitations.committee_grids(db, side),
            choices=choices,
            roles=await invitations.grantable_roles(db, side),
            error=error,
            error_form=error_form,
            form=form or InviteForm(),
            ttl_days=invitations.INVITATION_TTL.days,
        )

    def _created(self, request: Request, new: invitations.NewInvitation) -> Template:
        link = f"{request.app.state.settings.base_url}/invite/{new.token}"
        response = page(
            request,
            "invitations/created.html",
            view=new.view,
            link=link,
            qr=qr_svg(link, _("QR code of the invitation link")),
        )
        response.headers["Cache-Control"] = "no-store"  # the link is shown once: keep it out of caches
        return response

    @get("/")
    async def list_page(self, request: Request, db: DB, principal: CurrentPrincipal) -> Template:
        return await self._list_page(request, db, await _side(db, principal))

    @post("/")
    async def create(
        self, request: Request, db: DB, principal: CurrentPrincipal, data: Annotated[InviteForm, FORM]
    ) -> Template:
        side = await _side(db, principal)
        try:
            kind = InvitationKind(data.kind)
        except ValueError:
            kind = InvitationKind.MEMBER if side.kind is ContextKind.MEMBER else InvitationKind.WARDEN
        role = MemberRole(data.member_role) if data.member_role in set(MemberRole) else None
        try:
            new = await invitations.create_invitation(
                db,
                side,
                invitee_name=data.invitee_name,
                kind=kind,
                member_role=role,
                grid_id=_uuid(data.grid_id),
                committee_id=_uuid(data.committee_id),
                jurisdiction_id=_uuid(data.jurisdiction_id),
                insurer_id=_uuid(data.insurer_id),
                org_name=data.org_name,
            )
        except invitations.InvitationError as exc:
            if exc.code == "not_allowed":
                raise PermissionDeniedException(detail=_(NOT_ALLOWED)) from exc
            status = 403 if exc.code == "role_above_yours" else 400
            return await self._list_page(
                request, db, side, error=_(ERRORS[exc.code]), error_form=kind.value, form=data, status=status
            )
        return self._created(request, new)

    @post("/recovery")
    async def create_recovery(
        self, request: Request, db: DB, principal: CurrentPrincipal, data: Annotated[RecoveryForm, FORM]
    ) -> Template:
        side = await _side(db, principal)
        user_id = _uuid(data.user_id)
        if user_id is None and side.kind is ContextKind.ADMIN:
            user_id = await invitation_recovery.user_id_by_login(db, data.login)
        if user_id is None:
            raise NotFoundException()
        roles = await identity.roles_of(request.app.state.db, user_id, "recovery invitation")
        try:
            new = await invitation_recovery.create_recovery(
                db, side, user_id=user_id, roles=roles, revoke_old=data.revoke_old == "yes"
            )
        except invitations.InvitationError as exc:
            if exc.code == "unknown":
                raise NotFoundException() from exc
            status = 403 if exc.code == "role_above_yours" else 400
            return await self._list_page(
                request, db, side, error=_(ERRORS[exc.code]), error_form="recovery", status=status
            )
        return self._created(request, new)

    @post("/{invitation_id:uuid}/revoke")
    async def revoke(
        self, db: DB, principal: CurrentPrincipal, invitation_id: FromPath[uuid.UUID]
    ) -> Redirect:
        side = await _side(db, principal)
        if await invitations.revoke_invitation(db, side, invitation_id) is None:
            raise NotFoundException()  # another side's, or none: the same answer
        return Redirect(path="/invitations", status_code=303)


def _invitation_error(exc: invitations.InvitationError) -> Problem:
    message = _(ERRORS.get(exc.code, ERRORS["unknown"]))
    return Problem(UNUSABLE_STATUS.get(exc.code, 400), message, code=exc.code)


class InviteLinkPages(Controller):
    """The invitee's side: the one-time link (anyone holding it; rate-limited per address)."""

    path = "/invite"
    include_in_schema = False
    request_max_body_size = CEREMONY_BODY_MAX
    opt = access.public()

    @get("/{token:str}")
    async def open(
        self, request: Request, db: DB, principal: CurrentPrincipal, token: FromPath[str]
    ) -> Template:
        offer = await invitation_acceptance.open_invitation(db, token)
        if offer is None or offer.status != "pending":
            code = offer.status if offer else "unknown"
            response = page(
                request,
                "invitations/unusable.html",
                status_code=UNUSABLE_STATUS[code],
                message=_(ERRORS[code]),
                offer=offer,
                signed_in=principal is not None,
            )
        else:
            me = None
            if principal is not None:
                me = await db.get(User, principal.user_id)
            response = page(
                request, "invitations/accept.html", offer=offer, token=token, me=me, signed_in=me is not None
            )
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the path
        return response

    @post("/{token:str}/options", status_code=200)
    async def options(
        self, request: Request, db: DB, token: FromPath[str], data: JSONBody[OptionsRequest]
    ) -> Response[dict[str, Any]]:
        try:
            who = await invitation_acceptance.begin_acceptance(db, token, display_name=data.display_name)
        except invitations.InvitationError as exc:
            raise _invitation_error(exc) from None
        options, ceremony = passkeys.registration_options(
            request.app.state.settings,
            user_id=who.user_id,
            user_name=who.user_name,
            display_name=who.display_name,
            rp_name=_("Fire-safety portal"),
            exclude=who.exclude,
            binding=f"invite:{who.token_hash}",
        )
        request.session[passkeys.SESSION_KEY] = ceremony.to_session()
        return Response({"publicKey": options})

    @post("/{token:str}/accept", status_code=200)
    async def accept(
        self, request: Request, db: DB, token: FromPath[str], data: JSONBody[CredentialSubmission]
    ) -> Response[dict[str, Any]]:
        settings = request.app.state.settings
        try:
            ceremony = passkeys.take_ceremony(
                pop_ceremony(request), "register", binding=f"invite:{invitations.hash_token(token)}"
            )
            credential = passkeys.verify_registration(settings, ceremony, data.credential)
            accepted = await invitation_acceptance.accept_with_passkey(
                db,
                token,
                credential,
                display_name=ceremony.display_name,
                passkey_name=data.name or default_passkey_name(settings),
            )
        except passkeys.PasskeyError as exc:
            raise passkey_error(exc) from None
        except invitations.InvitationError as exc:
            raise _invitation_error(exc) from None
        if accepted.context_token is not None:
            kind, _sep, key = accepted.context_token.partition(":")
            contexts = [Context(ContextKind(kind), key, "")]
        else:  # a recovery: the person's roles are already committed
            contexts = await identity.roles_of(request.app.state.db, accepted.user.id, "recovery sign-in")
        chosen = start_session(request, accepted.user, contexts, "invitation")
        return Response({"redirect": home_of(chosen)})

    @post("/{token:str}/join", opt=access.signed_in())
    async def join(
        self, request: Request, db: DB, principal: CurrentPrincipal, token: FromPath[str]
    ) -> Redirect | Template:
        me = require_principal(principal)
        try:
            accepted = await invitation_acceptance.accept_signed_in(db, token, me.user_id)
        except invitations.InvitationError as exc:
            return page(
                request,
                "invitations/unusable.html",
                status_code=UNUSABLE_STATUS.get(exc.code, 400),
                message=_(ERRORS.get(exc.code, ERRORS["unknown"])),
                offer=None,
                signed_in=True,
            )
        assert accepted.context_token is not None  # a role was granted
        request.session["ctx"] = accepted.context_token
        kind, _sep, key = accepted.context_token.partition(":")
        return Redirect(path=home_of(Context(ContextKind(kind), key, "")), status_code=303)
