"""Evidence over HTTP: upload slots and completion (JSON, for uploader.js), signed downloads, the gallery
fragment and a small photos page. Parse, authorise (by scope), call a service, answer."""

from __future__ import annotations

import uuid
from typing import Any, Literal

import structlog
from litestar import Controller, Request, Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from portal.core.i18n import N_, _
from portal.core.problems import Problem, problem_response, problem_responses
from portal.core.storage import ObjectStorage, content_disposition
from portal.core.web import DB, page
from portal.evidence import processing, services
from portal.evidence.owners import EvidenceNotFound, may_see_private
from portal.evidence.schemas import EvidenceOut, GpsOut, SlotIn, SlotOut, UploadOut
from portal.identity import access
from portal.identity.dependencies import CurrentPrincipal, require_principal
from portal.identity.principal import ContextKind, Principal
from portal.models.evidence import Evidence, OwnerType, Processing

MESSAGES = {
    "type": N_("This file is not a photo (JPEG, PNG, WebP or HEIC) or a PDF document."),
    "damaged": N_("This file is damaged or incomplete. Please choose or take it again."),
    "pixels": N_("This picture has too many pixels to be processed safely."),
    "too_large": N_("This file is larger than the upload limit of %(mb)s MB."),
    "quota": N_("Your unit's storage for photos and documents is full (%(mb)s MB). Nothing was uploaded."),
    "expired": N_("This upload took too long and has expired. Please upload the file again."),
    "not_uploaded": N_("The file has not arrived yet. Please upload it again."),
    "client_id": N_("This upload id is already used for another upload."),
    "processing": N_("This picture is still being prepared. Please try again in a moment."),
    "processing_failed": N_("This picture could not be prepared. Please upload it again."),
    "frozen": N_("This record has been submitted: no more photos can be added to it."),
    "integrity": N_(
        "This file in storage no longer matches what was uploaded, so it is not shown. "
        "Please tell your administrator."
    ),
}
# Conflicts the client may resolve by waiting or retrying (409), a picture that will never be ready (410),
# stored bytes that no longer match their hash (409); every other refusal is of a well-formed request the
# rules do not allow (422).
_STATUS = {"not_uploaded": 409, "processing": 409, "processing_failed": 410, "integrity": 409}
Variant = Literal["display", "thumb", "original"]
# Members of the tenant (any role: staff upload the photos) and the people who visit or supervise it.
# Insurers read risk status, never evidence. Which objects each may see is the tenancy scope's business
# (another tenant's evidence is a 404); finer rules (GPS, originals) are in the services.
log = structlog.get_logger("portal.evidence")
WHO = access.member() | access.cross_tenant(ContextKind.WARDEN, ContextKind.COMMITTEE, ContextKind.REGULATOR)


def uploader_limits() -> dict[str, object]:
    """What the page tells uploader.js (data-* attributes of evidence/_macros.html's uploader), so that the
    browser refuses what this server would refuse, in the same words, before it decodes or sends anything."""
    refusal = MESSAGES["pixels"]  # not inside _(…): the extractor would take "pixels" for a message id
    return {"max_pixels": processing.MAX_PIXELS, "pixels_message": _(refusal)}


def _refusal(request: Request, exc: services.EvidenceError) -> Problem:
    settings = request.app.state.settings
    mb = settings.evidence_quota_mb if exc.code == "quota" else settings.evidence_max_upload_mb
    message = _(MESSAGES.get(exc.code, MESSAGES["damaged"]), mb=mb)
    return Problem(_STATUS.get(exc.code, 422), message, code=exc.code)


def _context(
    request: Request, principal: Principal | None
) -> tuple[Principal, ObjectStorage, services.Limits]:
    me = require_principal(principal)
    return me, request.app.state.storage, services.Limits.from_settings(request.app.state.settings)


async def evidence_out(session: AsyncSession, e: Evidence, user_id: uuid.UUID) -> EvidenceOut:
    obj = e.stored
    private = await may_see_private(session, user_id, e.tenant_id)
    has_gps = private and obj.gps_lat is not None and obj.gps_lon is not None
    return EvidenceOut(
        id=e.id,
        owner_type=e.owner_type,
        owner_id=e.owner_id,
        media_type=obj.media_type,
        size=obj.size,
        width=obj.width,
        height=obj.height,
        sha256=obj.sha256,
        processing=obj.processing.value,
        captured_at=obj.captured_at,
        uploaded_by=e.uploaded_by_name,
        created_at=e.created_at,
        display_url=f"/evidence/{e.id}/display",
        thumb_url=None if obj.processing is Processing.NOT_NEEDED else f"/evidence/{e.id}/thumb",
        original_url=f"/evidence/{e.id}/original" if private else None,
        gps=GpsOut(lat=obj.gps_lat, lon=obj.gps_lon) if has_gps else None,  # type: ignore[arg-type]
    )


async def _original(request: Request, storage: ObjectStorage, target: services.Download) -> Response[Any]:
    """An original passes through the portal rather than a storage URL: its hash is checked on every
    read, and it goes out with the verified type, as an attachment, never sniffed, on every backend (an S3
    URL can set the type but not ``nosniff``). Originals are bounded by the upload limit."""
    assert target.sha256 is not None
    try:
        data = await services.read_verified(storage, target.key, target.sha256)
    except services.IntegrityMismatch:
        log.error("evidence_integrity_mismatch", key=target.key)
        refusal = _refusal(request, services.EvidenceError("integrity"))
        return problem_response(request, refusal.status_code, detail=refusal.detail, code=refusal.code)
    return Response(
        data,
        media_type=target.media_type,
        headers={
            "content-disposition": content_disposition(target.filename or "download"),
            "x-content-type-options": "nosniff",
            "cache-control": "private, no-store",
        },
    )


class EvidenceController(Controller):
    path = "/evidence"
    opt = WHO
    tags = ["evidence"]  # noqa: RUF012  (Litestar declares it as a plain attribute)

    @post(
        "/slots",
        status_code=200,
        summary="An upload slot (presigned POST) for one file of an owner in scope",
        responses=problem_responses(
            {404: "The owner is not in the caller's scope", 422: "Refused: type, size, quota, frozen owner…"}
        ),
    )
    async def request_slot(
        self, request: Request, db: DB, principal: CurrentPrincipal, data: JSONBody[SlotIn]
    ) -> SlotOut:
        me, storage, limits = _context(request, principal)
        try:
            answer = await services.request_slot(
                db,
                storage,
                client_id=data.client_id,
                owner_type=data.owner_type,
                owner_id=data.owner_id,
                content_type=data.content_type,
                size=data.size,
                filename=data.filename,
                uploader=services.Uploader(me.user_id, me.display_name),
                limits=limits,
            )
        except EvidenceNotFound:
            raise NotFoundException() from None
        except services.EvidenceError as exc:
            raise _refusal(request, exc) from None
        slot, upload = answer.slot, answer.upload
        return SlotOut(
            client_id=slot.client_id,
            status=slot.status.value,
            max_size=slot.max_size,
            upload=UploadOut(
                url=upload.url, fields=upload.fields, key=upload.key, expires_at=upload.expires_at
            )
            if upload is not None
            else None,
            evidence=await evidence_out(db, answer.evidence, me.user_id) if answer.evidence else None,
        )

    @post(
        "/slots/{client_id:uuid}/complete",
        status_code=200,
        summary="Verify the uploaded file and link it to its owner",
        responses=problem_responses(
            {
                409: "The file has not arrived in storage yet (`not_uploaded`): upload it, then ask again",
                422: "Refused: the file is not what was declared, damaged, too large, or the slot expired",
            }
        ),
    )
    async def complete(
        self, request: Request, db: DB, principal: CurrentPrincipal, client_id: FromPath[uuid.UUID]
    ) -> EvidenceOut:
        me, storage, limits = _context(request, principal)
        try:
            evidence = await services.complete_upload(
                db,
                storage,
                client_id=client_id,
                uploader=services.Uploader(me.user_id, me.display_name),
                limits=limits,
            )
        except EvidenceNotFound:
            raise NotFoundException() from None
        except services.EvidenceError as exc:
            if exc.refused and me.scope is not None:
                await services.record_refusal(request.app.state.db, me.scope, client_id, exc.code)
            raise _refusal(request, exc) from None
        return await evidence_out(db, evidence, me.user_id)

    @get("/gallery", include_in_schema=False)
    async def gallery(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        owner_type: FromQuery[OwnerType],
        owner_id: FromQuery[uuid.UUID],
    ) -> Template:
        me = require_principal(principal)
        try:
            items = await services.gallery(db, owner_type, owner_id)
        except EvidenceNotFound:
            raise NotFoundException() from None
        views = [await evidence_out(db, e, me.user_id) for e in items]
        return Template(
            template_name="evidence/_gallery.html",
            context={"owner_type": owner_type.value, "owner_id": owner_id, "items": views},
        )

    @get("/{evidence_id:uuid}/{variant:str}", include_in_schema=False)
    async def download(
        self,
        request: Request,
        db: DB,
        principal: CurrentPrincipal,
        evidence_id: FromPath[uuid.UUID],
        variant: FromPath[str],
    ) -> Response[Any]:
        me = require_principal(principal)
        try:
            target = await services.download(db, evidence_id, variant, user_id=me.user_id)
        except EvidenceNotFound:
            raise NotFoundException() from None
        except services.EvidenceError as exc:
            # Asked by an <img> or a script, never a page: the reason as problem details, whatever it accepts.
            refusal = _refusal(request, exc)
            return problem_response(request, refusal.status_code, detail=refusal.detail, code=refusal.code)
        storage: ObjectStorage = request.app.state.storage
        if target.sha256 is not None:
            return await _original(request, storage, target)
        url = await storage.presign_download(
            target.key, filename=target.filename, content_type=target.media_type
        )
        # Never cached: the signed URL it points to lives a few minutes.
        return Redirect(path=url, status_code=303, headers={"cache-control": "no-store"})


class EvidencePages(Controller):
    path = "/t"
    include_in_schema = False
    opt = WHO

    @get("/{tenant_id:uuid}/photos")
    async def tenant_photos(
        self, request: Request, db: DB, principal: CurrentPrincipal, tenant_id: FromPath[uuid.UUID]
    ) -> Template:
        require_principal(principal)
        from portal.tenants.services import get_tenant

        tenant = await get_tenant(db, tenant_id)
        if tenant is None:
            raise NotFoundException()
        try:
            await services.resolve_owner(db, OwnerType.TENANT, tenant.id)
        except EvidenceNotFound:
            raise NotFoundException() from None
        return page(request, "evidence/photos.html", tenant=tenant)


__all__ = ["MESSAGES", "EvidenceController", "EvidencePages", "Variant", "uploader_limits"]
