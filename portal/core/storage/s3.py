"""Any S3 API (SeaweedFS, MinIO, Ceph RGW, AWS S3) through boto3.

boto3 is synchronous, so every call runs in a worker thread. Path-style addressing and SigV4 are the
common ground of all those servers (virtual-host buckets need DNS that self-hosted setups rarely have).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from portal.core.storage import (
    DEFAULT_DOWNLOAD_EXPIRY,
    DEFAULT_UPLOAD_EXPIRY,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    ObjectStorage,
    PresignedUpload,
    StorageError,
    StorageUnavailable,
    _check_expiry,
    _check_sizes,
    content_disposition,
    validate_content_type,
    validate_key,
)

__all__ = ["S3Storage"]

T = TypeVar("T")

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_NO_BUCKET = frozenset({"NoSuchBucket"})


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _config(*, connect_timeout: float, read_timeout: float, attempts: int) -> Config:
    return Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": attempts},
        # Recent boto3 adds CRC checksums to every upload by default; several S3-compatible servers
        # (older MinIO and Ceph releases) refuse them, and the portal hashes evidence itself anyway.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


class S3Storage(ObjectStorage):
    # The single-request limit of S3 (a presigned POST cannot be multipart).
    max_upload_size = 5 * 1024**3

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        if len(bucket) < 3:
            raise ValueError("an S3 bucket name has at least 3 characters")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        # A session of our own: boto3's default session is shared and not safe to create clients from
        # concurrently. Clients themselves are thread-safe.
        session = boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
        )
        self._client = session.client(
            "s3",
            endpoint_url=endpoint_url,
            config=_config(connect_timeout=5, read_timeout=60, attempts=3),
        )
        # check() must answer fast when the endpoint is down, not after a minute of retries.
        self._probe = session.client(
            "s3",
            endpoint_url=endpoint_url,
            config=_config(connect_timeout=2, read_timeout=5, attempts=1),
        )

    def __repr__(self) -> str:
        return f"S3Storage(bucket={self.bucket!r}, endpoint={self._where()})"

    def _where(self) -> str:
        return self.endpoint_url or f"AWS ({self.region})"

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        def call() -> T:
            try:
                return fn(*args, **kwargs)
            except BotoCoreError as exc:
                # Connection refused, timeouts, missing credentials: the backend is not usable.
                raise StorageUnavailable(f"S3 endpoint {self._where()}: {exc}") from exc

        return await anyio.to_thread.run_sync(call)

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
        seconds = _check_expiry(expires_in)
        expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
        post = await self._run(
            self._client.generate_presigned_post,
            Bucket=self.bucket,
            Key=key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", min_size, max_size]],
            ExpiresIn=seconds,
        )
        return PresignedUpload(
            url=post["url"],
            fields={name: str(value) for name, value in post["fields"].items()},
            key=key,
            expires_at=expires_at,
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
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        if content_type is not None:
            params["ResponseContentType"] = validate_content_type(content_type)
        seconds = _check_expiry(expires_in)
        url: str = await self._run(
            self._client.generate_presigned_url, "get_object", Params=params, ExpiresIn=seconds
        )
        return url

    async def head(self, key: str) -> ObjectInfo | None:
        validate_key(key)

        def call() -> ObjectInfo | None:
            try:
                meta = self._client.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    return None
                raise self._error(exc) from exc
            return ObjectInfo(
                key=key,
                size=int(meta["ContentLength"]),
                content_type=meta.get("ContentType") or "application/octet-stream",
                etag=(meta.get("ETag") or "").strip('"') or None,
            )

        return await self._run(call)

    async def read(self, key: str) -> bytes:
        validate_key(key)

        def call() -> bytes:
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND:
                    raise ObjectNotFound(key) from exc
                raise self._error(exc) from exc
            body = response["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
            return data

        return await self._run(call)

    async def put(self, key: str, data: bytes, content_type: str) -> ObjectInfo:
        validate_key(key)
        validate_content_type(content_type)

        def call() -> ObjectInfo:
            try:
                # If-None-Match makes the write conditional on the server, so immutability holds even
                # against a concurrent writer.
                response = self._client.put_object(
                    Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, IfNoneMatch="*"
                )
            except ClientError as exc:
                if _error_code(exc) in {"PreconditionFailed", "412", "ConditionalRequestConflict"}:
                    raise ObjectExists(key) from exc
                raise self._error(exc) from exc
            etag = (response.get("ETag") or "").strip('"') or None
            return ObjectInfo(key=key, size=len(data), content_type=content_type, etag=etag)

        return await self._run(call)

    async def delete(self, key: str) -> None:
        validate_key(key)

        def call() -> None:
            try:
                self._client.delete_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if _error_code(exc) not in _NOT_FOUND:
                    raise self._error(exc) from exc

        await self._run(call)

    async def check(self) -> None:
        await self._run(self._check)

    async def ensure_ready(self) -> None:
        def call() -> None:
            try:
                self._probe.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _error_code(exc) in _NOT_FOUND | _NO_BUCKET:
                    self._create_bucket()
            # Also turns any other answer (denied, unreachable) into a clear StorageUnavailable.
            self._check()

        await self._run(call)

    def _create_bucket(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        # us-east-1 is the one region that refuses an explicit location constraint.
        if self.region and self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise StorageUnavailable(
                    f"cannot create bucket {self.bucket!r} at {self._where()}: {exc}"
                ) from exc

    def _check(self) -> None:
        try:
            self._probe.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = _error_code(exc)
            if code in _NOT_FOUND | _NO_BUCKET:
                raise StorageUnavailable(
                    f"bucket {self.bucket!r} does not exist at {self._where()} "
                    "(ensure_ready creates it, given permission to)"
                ) from exc
            if code in {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"}:
                raise StorageUnavailable(
                    f"access to bucket {self.bucket!r} at {self._where()} denied: check the S3 access key "
                    f"and secret key ({code})"
                ) from exc
            raise StorageUnavailable(f"bucket {self.bucket!r} at {self._where()}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"cannot reach S3 endpoint {self._where()}: {exc}") from exc

    def _error(self, exc: ClientError) -> StorageError:
        code = _error_code(exc)
        if code in _NO_BUCKET:
            return StorageUnavailable(f"bucket {self.bucket!r} does not exist at {self._where()}")
        return StorageError(f"S3 {code or 'error'} on bucket {self.bucket!r}: {exc}")
