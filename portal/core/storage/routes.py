"""HTTP face of the file backend: the browser POST and signed GET that S3 would otherwise answer.

Only parsing and answering here; every decision is in :class:`~portal.core.storage.file.FileStorage`.
Errors answer with S3's XML shape so browser code handles both backends alike. When the configured
backend is not a FileStorage these paths do not exist (404).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import ClientException, NotFoundException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.params import FromPath
from litestar.response import File

from portal.core import route_access as access
from portal.core.storage import ObjectNotFound, UploadRejected, content_disposition
from portal.core.storage.file import DOWNLOAD_PATH, UPLOAD_PATH, FileStorage

__all__ = ["UPLOAD_BODY_LIMIT", "StorageController"]

# The policy enforces each upload's exact limit; this only stops absurd bodies before they are read.
# The margin covers the multipart framing and the policy fields.
UPLOAD_BODY_LIMIT = FileStorage.max_upload_size + 64 * 1024

_BASE = "/storage"
# The signature is the authorisation, as with S3: no session, and no CSRF token (the browser posts a form
# the portal did not render). These are the opt keys Litestar's auth and CSRF middleware look for.
_ONE_FILE = "POST requires exactly one file upload per request."
_PUBLIC: dict[str, Any] = {**access.public(), "exclude_from_auth": True, "exclude_from_csrf": True}


def _file_storage(request: Request[Any, Any, Any]) -> FileStorage:
    storage = getattr(request.app.state, "storage", None)
    if not isinstance(storage, FileStorage):
        raise NotFoundException()
    return storage


def _error(code: str, message: str, status_code: int, resource: str) -> Response[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource></Error>"
    )
    return Response(content=body.encode(), status_code=status_code, media_type="application/xml")


def _rejected(exc: UploadRejected, resource: str) -> Response[bytes]:
    return _error(exc.code, exc.message, exc.status_code, resource)


class StorageController(Controller):
    path = _BASE
    include_in_schema = False

    @post(UPLOAD_PATH.removeprefix(_BASE), request_max_body_size=UPLOAD_BODY_LIMIT, opt=_PUBLIC)
    async def upload(self, request: Request[Any, Any, Any]) -> Response[bytes]:
        storage = _file_storage(request)
        resource = request.url.path
        try:
            form = await request.form()
        except RequestEntityTooLarge:
            return _error(
                "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.", 400, resource
            )
        except ClientException as exc:
            return _error(
                "MalformedPOSTRequest", f"The body is not valid multipart/form-data: {exc}", 400, resource
            )

        fields: dict[str, str] = {}
        file_part: UploadFile | str | None = None
        try:
            for name, value in form.multi_items():
                if name == "file":
                    if file_part is not None:
                        return _error("InvalidArgument", _ONE_FILE, 400, resource)
                    file_part = value
                elif isinstance(value, UploadFile) or name in fields:
                    return _error("InvalidArgument", f"Unexpected or repeated field {name!r}.", 400, resource)
                else:
                    fields[name] = value
            if file_part is None:
                return _error("InvalidArgument", _ONE_FILE, 400, resource)
            if isinstance(file_part, UploadFile):
                data = await file_part.read()
                part_type: str | None = file_part.content_type
            else:  # a part sent without a filename arrives as text
                data = file_part.encode()
                part_type = None
        finally:
            for _, value in form.multi_items():
                if isinstance(value, UploadFile):
                    await value.close()

        try:
            await anyio.to_thread.run_sync(storage.accept_upload, fields, data, part_type)
        except UploadRejected as exc:
            return _rejected(exc, resource)
        return Response(content=b"", status_code=204)

    @get(DOWNLOAD_PATH.removeprefix(_BASE) + "/{key:path}", opt=_PUBLIC)
    async def download(self, request: Request[Any, Any, Any], key: FromPath[str]) -> Response[Any]:
        storage = _file_storage(request)
        resource = request.url.path
        # Read by hand rather than as typed parameters: a missing one must be S3's 403, not a 400.
        query = request.query_params
        expires = query.get("expires", "")
        signature = query.get("signature", "")
        filename = query.get("filename")
        content_type = query.get("content_type")
        try:
            path, media_type = await anyio.to_thread.run_sync(
                storage.open_download, str(key).removeprefix("/"), expires, signature, filename, content_type
            )
        except UploadRejected as exc:
            return _rejected(exc, resource)
        except ObjectNotFound:
            return _error("NoSuchKey", "The specified key does not exist.", 404, resource)
        headers = {
            # Never cacheable beyond the URL's own life, and never by a shared cache.
            "cache-control": f"private, max-age={storage.seconds_left(expires)}",
            "x-content-type-options": "nosniff",
            "content-disposition": content_disposition(filename) if filename is not None else "inline",
        }
        return File(path=path, media_type=media_type, headers=headers)
