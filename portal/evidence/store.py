"""The object storage of this process: the web app sets it from its own; a worker opens it from settings."""

from __future__ import annotations

from portal.config import Settings
from portal.core.storage import ObjectStorage, open_storage

_storage: ObjectStorage | None = None


def storage_from_settings(settings: Settings) -> ObjectStorage:
    return open_storage(
        settings.storage_url,
        secret=settings.signing_key().decode(),
        public_base_url=settings.base_url,
        s3_endpoint=settings.s3_endpoint_url,
        s3_region=settings.s3_region,
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
    )


def use_storage(storage: ObjectStorage | None) -> None:
    global _storage
    _storage = storage


def current_storage() -> ObjectStorage:
    global _storage
    if _storage is None:
        from portal.config import get_settings

        _storage = storage_from_settings(get_settings())
    return _storage
