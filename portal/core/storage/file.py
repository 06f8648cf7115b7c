"""Objects in a local directory, served with the same signed POST/GET contract as S3.

Layout under ``root``: ``objects/<key>`` holds the bytes, ``meta/<key>.json`` the content type, size and
ETag, ``tmp/`` the files being written. Keeping the three apart means no key can collide with a sidecar
and a half-written file is never visible under an object's name.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread

from portal.core.storage import (
    DEFAULT_DOWNLOAD_EXPIRY,
    DEFAULT_UPLOAD_EXPIRY,
    InvalidKey,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    ObjectStorage,
    PresignedUpload,
    StorageUnavailable,
    UploadRejected,
    _check_expiry,
    _check_sizes,
    validate_content_type,
    validate_key,
)

__all__ = ["DOWNLOAD_PATH", "UPLOAD_PATH", "FileStorage", "ObjectNotFound", "UploadRejected"]

UPLOAD_PATH = "/storage/upload"
DOWNLOAD_PATH = "/storage/o"

# The form fields a browser POST carries besides the file. As on AWS S3, anything else is refused unless
# it starts with "x-ignore-", so a client that works here also works against a strict S3.
_POLICY_FIELDS = frozenset({"key", "content-type", "policy", "signature"})
_STALE_TMP_SECONDS = 3600


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FileStorage(ObjectStorage):
    # Uploads pass through the portal's own request handling, so they stay modest; the route's body limit
    # is derived from this.
    max_upload_size = 50 * 1024 * 1024

    def __init__(
        self,
        root: Path,
        secret: bytes,
        public_base_url: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secret:
            raise ValueError("FileStorage needs a non-empty signing secret")
        self.root = Path(root)
        self.public_base_url = public_base_url.rstrip("/")
        self._secret = secret
        self._clock = clock

    def __repr__(self) -> str:
        return f"FileStorage({str(self.root)!r})"

    # -- paths and signatures ------------------------------------------------------------------------

    @property
    def _objects(self) -> Path:
        return self.root / "objects"

    @property
    def _meta(self) -> Path:
        return self.root / "meta"

    @property
    def _tmp(self) -> Path:
        return self.root / "tmp"

    def _data_path(self, key: str) -> Path:
        return self._objects / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self._meta / f"{validate_key(key)}.json"

    def _sign(self, message: str) -> str:
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def _verify(self, message: str, signature: str) -> bool:
        return hmac.compare_digest(self._sign(message).encode(), signature.encode("utf-8", "replace"))

    @staticmethod
    def _download_message(key: str, expires: int, filename: str | None, content_type: str | None) -> str:
        # JSON keeps the fields unambiguous whatever characters a filename holds; the leading "GET" keeps
        # a download signature from ever being valid as an upload one (policies are base64, never "[").
        return json.dumps(["GET", key, expires, filename, content_type], ensure_ascii=True)

    # -- presigning --------------------------------------------------------------------------------------

    async def presign_upload(
        self,
        key: str,
        *,
        content_type: str,
        max_size: int,
        min_size: int = 1,
        expires_in: timedelta = DEFAULT_UPLOAD_EXPIRY,
    ) -> PresignedUpload:
        validate_key(key)
        validate_content_type(content_type)
        _check_sizes(min_size, max_size, self.max_upload_size)
        expires = int(self._clock()) + _check_expiry(expires_in)
        document = {
            "key": key,
            "content_type": content_type,
            "min_size": min_size,
            "max_size": max_size,
            "expires": expires,
        }
        policy = _b64encode(json.dumps(document, separators=(",", ":"), sort_keys=True).encode())
        return PresignedUpload(
            url=f"{self.public_base_url}{UPLOAD_PATH}",
            fields={
                "key": key,
                "Content-Type": content_type,
                "policy": policy,
                "signature": self._sign(policy),
            },
            key=key,
            expires_at=datetime.fromtimestamp(expires, UTC),
        )

    async def presign_download(
        self,
        key: str,
        *,
        expires_in: timedelta = DEFAULT_DOWNLOAD_EXPIRY,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        validate_key(key)
        if content_type is not None:
            validate_content_type(content_type)
        expires = int(self._clock()) + _check_expiry(expires_in)
        query = {"expires": str(expires)}
        if filename is not None:
            query["filename"] = filename
        if content_type is not None:
            query["content_type"] = content_type
        query["signature"] = self._sign(self._download_message(key, expires, filename, content_type))
        return f"{self.public_base_url}{DOWNLOAD_PATH}/{key}?{urlencode(query)}"

    # -- what the HTTP layer calls -----------------------------------------------------------------------

    def accept_upload(
        self, fields: Mapping[str, str], file_bytes: bytes, file_content_type: str | None = None
    ) -> ObjectInfo:
        """Check a browser POST against its signed policy and store the file (blocking: run in a thread)."""
        # S3 matches form field names case-insensitively.
        form = {name.lower(): value for name, value in fields.items()}
        policy = form.get("policy", "")
        signature = form.get("signature", "")
        if not policy or not signature or not self._verify(policy, signature):
            raise UploadRejected("AccessDenied", "The policy signature does not match.")
        try:
            document = json.loads(_b64decode(policy))
            key = str(document["key"])
            content_type = str(document["content_type"])
            min_size = int(document["min_size"])
            max_size = int(document["max_size"])
            expires = int(document["expires"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise UploadRejected("InvalidPolicyDocument", "The policy document is malformed.") from exc
        if self._clock() > expires:
            raise UploadRejected("RequestExpired", "Invalid according to Policy: Policy expired.")
        extra = sorted(
            name for name in form if name not in _POLICY_FIELDS and not name.startswith("x-ignore-")
        )
        if extra:
            raise UploadRejected(
                "InvalidPolicyDocument",
                f"Invalid according to Policy: Extra input fields: {', '.join(extra)}",
            )
        if form.get("key") != key:
            raise UploadRejected("InvalidPolicyDocument", "Invalid according to Policy: key does not match.")
        declared = form.get("content-type", file_content_type)
        if declared != content_type:
            raise UploadRejected(
                "InvalidPolicyDocument", "Invalid according to Policy: Content-Type does not match."
            )
        if len(file_bytes) > max_size:
            raise UploadRejected("EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")
        if len(file_bytes) < min_size:
            raise UploadRejected(
                "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size."
            )
        try:
            # As on S3, a POST the policy allows replaces what is at its key: the two backends must not
            # disagree, and nothing may rely on a browser-writable key staying put (see evidence.services).
            return self._write(key, file_bytes, content_type, replace=True)
        except ObjectExists as exc:  # a prefix of the key is itself an object
            raise UploadRejected("PreconditionFailed", "An object with this key already exists.") from exc

    def open_download(
        self,
        key: str,
        expires: str | int,
        signature: str,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> tuple[Path, str]:
        """Verify a signed GET and return the file to stream and its content type (blocking)."""
        try:
            validate_key(key)
            expires_at = int(expires)
        except (InvalidKey, ValueError) as exc:
            raise UploadRejected("AccessDenied", "The request signature does not match.") from exc
        if not self._verify(self._download_message(key, expires_at, filename, content_type), signature):
            raise UploadRejected("AccessDenied", "The request signature does not match.")
        if self._clock() > expires_at:
            raise UploadRejected("RequestExpired", "Request has expired.")
        info = self._head(key)
        if info is None:
            raise ObjectNotFound(key)
        return self._data_path(key), content_type or info.content_type

    def seconds_left(self, expires: str | int) -> int:
        """How long a verified download URL stays valid: no cache may keep the response longer."""
        return max(0, int(expires) - int(self._clock()))

    # -- blocking implementations ------------------------------------------------------------------------

    def _write(self, key: str, data: bytes, content_type: str, *, replace: bool = False) -> ObjectInfo:
        validate_content_type(content_type)
        data_path = self._data_path(key)
        meta_path = self._meta_path(key)
        info = ObjectInfo(
            key=key,
            size=len(data),
            content_type=content_type,
            etag=hashlib.md5(data, usedforsecurity=False).hexdigest(),  # what S3 reports for one part
        )
        tmp = self._write_tmp(data)
        try:
            data_path.parent.mkdir(parents=True, exist_ok=True)
            meta_path.parent.mkdir(parents=True, exist_ok=True)
            self._publish(tmp, data_path, exclusive=not replace)
        except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
            # The key exists, a prefix of it is itself an object (a file where a folder should be), or the
            # key is a prefix of other keys (a folder where the file should be).
            raise ObjectExists(key) from exc
        finally:
            tmp.unlink(missing_ok=True)
        try:
            meta = {"content_type": info.content_type, "size": info.size, "etag": info.etag}
            self._publish(self._write_tmp(json.dumps(meta).encode()), meta_path, exclusive=False)
        except BaseException:
            # Without its metadata the object is invisible, so do not leave it blocking the key.
            data_path.unlink(missing_ok=True)
            raise
        return info

    def _write_tmp(self, data: bytes) -> Path:
        self._tmp.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=self._tmp, prefix="up-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    @staticmethod
    def _publish(tmp: Path, target: Path, *, exclusive: bool) -> None:
        try:
            if not exclusive:
                os.replace(tmp, target)
                return
            # A hard link appears atomically and fails if the name exists, so two racing uploads of one
            # key cannot both win (os.replace would silently let the last one overwrite the first).
            try:
                os.link(tmp, target)
            except (FileExistsError, NotADirectoryError):
                raise
            except OSError:
                # Filesystems without hard links: best effort, still never a torn file.
                if target.exists():
                    raise FileExistsError(target) from None
                os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _head(self, key: str) -> ObjectInfo | None:
        meta_path = self._meta_path(key)
        data_path = self._data_path(key)
        try:
            meta: dict[str, Any] = json.loads(meta_path.read_bytes())
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        if not data_path.is_file():
            return None
        return ObjectInfo(
            key=key, size=int(meta["size"]), content_type=meta["content_type"], etag=meta.get("etag")
        )

    def _read(self, key: str) -> bytes:
        if self._head(key) is None:
            raise ObjectNotFound(key)
        try:
            return self._data_path(key).read_bytes()
        except FileNotFoundError as exc:  # deleted in between
            raise ObjectNotFound(key) from exc

    def _delete(self, key: str) -> None:
        # Bytes first: once they are gone the object is gone, whatever happens to the sidecar.
        for path, top in ((self._data_path(key), self._objects), (self._meta_path(key), self._meta)):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                path.unlink()
            self._prune(path.parent, top)

    @staticmethod
    def _prune(folder: Path, top: Path) -> None:
        """Remove the folders a deleted object leaves empty (one per upload), up to but not including
        ``top``: S3 has no folders, so neither may this backend keep them. A folder that another object
        is being written into at the same moment is not empty, and rmdir refuses it."""
        while folder != top and top in folder.parents:
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): stop climbing
                return
            folder = folder.parent

    def _check(self) -> None:
        if not self.root.is_dir():
            raise StorageUnavailable(
                f"storage directory {self.root} does not exist (it is created by ensure_ready at start-up)"
            )
        try:
            for sub in (self._objects, self._meta, self._tmp):
                if not sub.is_dir():
                    raise StorageUnavailable(f"storage directory {sub} is missing")
            probe = self._write_tmp(b"")
            probe.unlink()
        except OSError as exc:
            raise StorageUnavailable(f"storage directory {self.root} is not writable: {exc}") from exc

    def _ensure_ready(self) -> None:
        try:
            for sub in (self._objects, self._meta, self._tmp):
                sub.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnavailable(f"cannot create storage directory {self.root}: {exc}") from exc
        # Leftovers of writes interrupted by a crash; recent ones may belong to a write in progress.
        cutoff = time.time() - _STALE_TMP_SECONDS
        for leftover in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
        self._check()

    # -- async contract ----------------------------------------------------------------------------------

    async def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)
        return await anyio.to_thread.run_sync(self._head, key)

    async def read(self, key: str) -> bytes:
        validate_key(key)
        return await anyio.to_thread.run_sync(self._read, key)

    async def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        validate_key(key)
        validate_content_type(content_type)
        return await anyio.to_thread.run_sync(self._write, key, bytes(data), content_type)

    async def delete(self, key: str) -> None:
        validate_key(key)
        await anyio.to_thread.run_sync(self._delete, key)

    async def check(self) -> None:
        await anyio.to_thread.run_sync(self._check)

    async def ensure_ready(self) -> None:
        await anyio.to_thread.run_sync(self._ensure_ready)
