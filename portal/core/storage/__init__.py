"""Object storage: one contract, two backends.

The browser uploads evidence straight to storage with a presigned POST (size and type conditions enforced
by the storage server) and downloads it through short-lived signed URLs. ``s3://BUCKET`` talks to any S3
API; ``file://DIR`` keeps objects in a local directory and serves the same POST/GET contract through the
portal itself (see :mod:`portal.core.storage.routes`), so the browser code does not know which one runs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

if TYPE_CHECKING:
    from portal.core.storage.file import FileStorage
    from portal.core.storage.s3 import S3Storage

__all__ = [
    "DEFAULT_DOWNLOAD_EXPIRY",
    "DEFAULT_UPLOAD_EXPIRY",
    "MAX_EXPIRY",
    "InvalidKey",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStorage",
    "PresignedUpload",
    "StorageError",
    "StorageUnavailable",
    "UploadRejected",
    "content_disposition",
    "open_storage",
    "validate_content_type",
    "validate_key",
]

DEFAULT_UPLOAD_EXPIRY = timedelta(minutes=10)
DEFAULT_DOWNLOAD_EXPIRY = timedelta(minutes=5)
# SigV4 presigned URLs cannot live longer than a week; the file backend keeps the same ceiling.
MAX_EXPIRY = timedelta(days=7)
MAX_KEY_LENGTH = 512

_KEY_RE = re.compile(r"[A-Za-z0-9/_.-]+")
_MIME_PART = r"[A-Za-z0-9!#$&^_.+-]+"
_CONTENT_TYPE_RE = re.compile(
    rf"{_MIME_PART}/{_MIME_PART}(?: *; *{_MIME_PART}=(?:{_MIME_PART}|\"[^\"\\\r\n]*\"))*"
)


class StorageError(Exception):
    """Base class of every storage error."""


class StorageUnavailable(StorageError):
    """The backend cannot be used (endpoint down, bucket missing, directory not writable)."""


class InvalidKey(StorageError, ValueError):
    """A key outside the safe alphabet, or one that could escape its prefix."""


class ObjectNotFound(StorageError):
    def __init__(self, key: str) -> None:
        super().__init__(f"no object with key {key!r}")
        self.key = key


class ObjectExists(StorageError):
    """Objects are immutable: a second write to the same key is refused."""

    def __init__(self, key: str) -> None:
        super().__init__(f"an object with key {key!r} already exists")
        self.key = key


# Status per S3-style error code; anything not listed is a plain 400.
_REJECTION_STATUS = {
    "AccessDenied": 403,
    "RequestExpired": 403,
    "PreconditionFailed": 412,
}


class UploadRejected(StorageError):
    """A signed upload or download the file backend refuses, with the code S3 would use."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status_code(self) -> int:
        return _REJECTION_STATUS.get(self.code, 400)


@dataclass(frozen=True, slots=True)
class PresignedUpload:
    """What the browser needs for a multipart POST: send ``fields`` first, then the ``file`` part."""

    url: str
    fields: dict[str, str]
    key: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    content_type: str
    etag: str | None = field(default=None)


def validate_key(key: str) -> str:
    """Return ``key`` if it is safe as both an S3 key and a relative file path, else raise InvalidKey."""
    if not isinstance(key, str) or not key:
        raise InvalidKey("key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"key longer than {MAX_KEY_LENGTH} characters")
    if not _KEY_RE.fullmatch(key):
        raise InvalidKey(f"key {key!r} may only contain A-Z a-z 0-9 / _ . -")
    if key.startswith("/") or key.endswith("/"):
        raise InvalidKey(f"key {key!r} must not start or end with '/'")
    if ".." in key:
        raise InvalidKey(f"key {key!r} must not contain '..'")
    # The file backend maps keys to paths: empty or "." segments would alias other keys.
    if any(part in ("", ".") for part in key.split("/")):
        raise InvalidKey(f"key {key!r} has an empty or '.' path segment")
    return key


def validate_content_type(content_type: str) -> str:
    """Accept ``type/subtype[; param=value]``: the value ends up in response headers."""
    if (
        not isinstance(content_type, str)
        or len(content_type) > 255
        or not _CONTENT_TYPE_RE.fullmatch(content_type)
    ):
        raise ValueError(f"invalid content type {content_type!r}")
    return content_type


def content_disposition(filename: str) -> str:
    """An ``attachment`` header value that survives non-ASCII names (RFC 6266 / RFC 5987)."""
    cleaned = (
        "".join(ch for ch in filename if ch >= " " and ch != "\x7f").replace("/", "_").replace("\\", "_")
    )
    cleaned = cleaned.strip() or "download"
    fallback = "".join(ch if " " <= ch < "\x7f" and ch not in '"%;' else "_" for ch in cleaned)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(cleaned, safe='')}"


def _check_expiry(expires_in: timedelta) -> int:
    seconds = int(expires_in.total_seconds())
    if seconds < 1 or expires_in > MAX_EXPIRY:
        raise ValueError(f"expires_in must be between 1 second and {MAX_EXPIRY}")
    return seconds


def _check_sizes(min_size: int, max_size: int, limit: int) -> None:
    if min_size < 0 or max_size < max(min_size, 1) or max_size > limit:
        raise ValueError(f"need 0 <= min_size <= max_size <= {limit}, got {min_size}..{max_size}")


class ObjectStorage(ABC):
    """The storage contract. Every method validates the key first (InvalidKey)."""

    #: The largest ``max_size`` this backend accepts in an upload policy.
    max_upload_size: int

    @abstractmethod
    async def presign_upload(
        self,
        key: str,
        *,
        content_type: str,
        max_size: int,
        min_size: int = 1,
        expires_in: timedelta = DEFAULT_UPLOAD_EXPIRY,
    ) -> PresignedUpload:
        """A browser POST slot for exactly this key and content type, size within [min_size, max_size]."""

    @abstractmethod
    async def presign_download(
        self,
        key: str,
        *,
        expires_in: timedelta = DEFAULT_DOWNLOAD_EXPIRY,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str:
        """A short-lived GET URL; ``filename`` makes it a download, ``content_type`` overrides the type."""

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo | None:
        """Size and type of a stored object, or None if there is none."""

    @abstractmethod
    async def read(self, key: str) -> bytes:
        """The whole object (raises ObjectNotFound)."""

    @abstractmethod
    async def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        """Store a new object (raises ObjectExists: objects are immutable)."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error (as in S3)."""

    @abstractmethod
    async def check(self) -> None:
        """Raise StorageUnavailable with a message an operator can act on."""

    @abstractmethod
    async def ensure_ready(self) -> None:
        """Create what is missing (directory or bucket), then check()."""


def derive_signing_key(secret: str) -> bytes:
    """A key for storage signatures only, so a leaked URL signature says nothing about other uses of it."""
    if not secret:
        raise ValueError("a non-empty secret is needed to sign storage URLs")
    return hmac.new(secret.encode(), b"portal.core.storage/v1", hashlib.sha256).digest()


def open_storage(
    url: str,
    *,
    secret: str,
    public_base_url: str,
    s3_endpoint: str | None = None,
    s3_region: str = "us-east-1",
    s3_access_key: str | None = None,
    s3_secret_key: str | None = None,
) -> ObjectStorage:
    """``file://DIR`` (relative to the current directory unless absolute) or ``s3://BUCKET``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        raw = parts.netloc + parts.path
        if not raw:
            raise ValueError("file:// needs a directory, e.g. file://var/objects")
        from portal.core.storage.file import FileStorage

        # Resolved now so that a later chdir cannot move the store.
        root = Path(raw).expanduser().absolute()
        return FileStorage(root, derive_signing_key(secret), public_base_url)
    if parts.scheme == "s3":
        bucket = parts.netloc
        if len(bucket) < 3 or parts.path not in ("", "/"):
            raise ValueError("s3:// needs a bucket name of at least 3 characters and no path: s3://BUCKET")
        # Imported here: boto3 is slow to import and the embedded shape never needs it.
        from portal.core.storage.s3 import S3Storage

        return S3Storage(bucket, s3_endpoint, s3_region, s3_access_key, s3_secret_key)
    raise ValueError(f"unsupported storage URL {url!r}: use file://DIRECTORY or s3://BUCKET")


def __getattr__(name: str) -> type[FileStorage] | type[S3Storage]:
    # Lazy re-exports, for the same reason as the local imports in open_storage.
    if name == "FileStorage":
        from portal.core.storage.file import FileStorage

        return FileStorage
    if name == "S3Storage":
        from portal.core.storage.s3 import S3Storage

        return S3Storage
    raise AttributeError(name)
