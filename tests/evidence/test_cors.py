"""``infra/s3/cors.json`` on a real S3 server (SeaweedFS): the bucket rule that lets browsers POST photos.

The uploader's ``XMLHttpRequest`` has an upload-progress listener, which makes the browser send a CORS
preflight (``OPTIONS``) before the presigned POST, and read the POST's answer only if it carries
``Access-Control-Allow-Origin`` for the portal's origin. The rule is applied with boto3's
``put_bucket_cors`` (what ``aws s3api put-bucket-cors`` sends) and removed afterwards: the bucket is the
one the ``seaweedfs`` fixture shares with the other tests.

SeaweedFS (4.x) applies a bucket's rule to preflights on the bucket's object paths and to the upload
itself, but answers a preflight on the bucket root (``/BUCKET``, where a path-style presigned POST goes)
with the gateway-wide ``-s3.allowedOrigins`` (``*`` unless set; infra/s3/README.md says what to set in
production). So the preflights below go to an object path, and the upload answers are checked on the real
presigned URL.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio

from portal.core.storage.s3 import S3Storage
from tests.evidence.conftest import BUCKET
from tests.fixtures.seaweedfs import SeaweedFS

CORS_JSON = Path(__file__).resolve().parents[2] / "infra" / "s3" / "cors.json"
RULES: dict[str, Any] = json.loads(CORS_JSON.read_text())
PORTAL_ORIGIN = RULES["CORSRules"][0]["AllowedOrigins"][0]  # the placeholder stands in for the portal
OTHER_ORIGIN = "https://elsewhere.example.net"


@pytest_asyncio.fixture
async def storage(seaweedfs: SeaweedFS) -> AsyncIterator[S3Storage]:
    client = seaweedfs.client()
    client.put_bucket_cors(Bucket=BUCKET, CORSConfiguration=RULES)
    try:
        yield S3Storage(
            BUCKET, seaweedfs.endpoint_url, seaweedfs.region, seaweedfs.access_key, seaweedfs.secret_key
        )
    finally:
        client.delete_bucket_cors(Bucket=BUCKET)


def _preflight(server: SeaweedFS, origin: str, method: str = "POST") -> httpx.Response:
    url = f"{server.endpoint_url}/{BUCKET}/evidence/{uuid.uuid4()}/original"
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    return httpx.options(url, headers=headers, timeout=30)


async def test_the_rule_is_stored_as_written(storage: S3Storage, seaweedfs: SeaweedFS) -> None:
    (stored,) = seaweedfs.client().get_bucket_cors(Bucket=BUCKET)["CORSRules"]
    (written,) = RULES["CORSRules"]
    for field in ("AllowedOrigins", "AllowedMethods", "AllowedHeaders", "ExposeHeaders", "MaxAgeSeconds"):
        assert stored[field] == written[field]


async def test_a_preflight_from_the_portal_is_allowed_and_from_elsewhere_not(
    storage: S3Storage, seaweedfs: SeaweedFS
) -> None:
    allowed = _preflight(seaweedfs, PORTAL_ORIGIN)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == PORTAL_ORIGIN
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert allowed.headers["access-control-max-age"] == str(RULES["CORSRules"][0]["MaxAgeSeconds"])

    elsewhere = _preflight(seaweedfs, OTHER_ORIGIN)
    assert "access-control-allow-origin" not in elsewhere.headers
    # Downloads are navigations (the portal redirects to a signed GET): no method but POST is allowed. (For
    # a method no rule allows SeaweedFS still echoes the origin but names no method, and that is what a
    # browser checks.)
    put = _preflight(seaweedfs, PORTAL_ORIGIN, "PUT")
    assert "PUT" not in put.headers.get("access-control-allow-methods", "")


async def test_the_upload_answer_is_readable_by_the_portal_only(storage: S3Storage) -> None:
    keys = []
    try:
        for origin, expected in ((PORTAL_ORIGIN, PORTAL_ORIGIN), (OTHER_ORIGIN, None)):
            key = f"cors-test/{uuid.uuid4()}/original"
            keys.append(key)
            upload = await storage.presign_upload(key, content_type="image/jpeg", max_size=1024)
            async with httpx.AsyncClient(timeout=30) as client:
                answer = await client.post(
                    upload.url,
                    data=upload.fields,
                    files={"file": ("photo.jpg", b"\xff\xd8 not really a photo", "image/jpeg")},
                    headers={"Origin": origin},
                )
            # CORS is no access control: the signed policy is. The server stores both; only the portal's
            # page may read the answer (the browser hides it from a script of any other origin).
            assert answer.status_code == 204, answer.text
            assert answer.headers.get("access-control-allow-origin") == expected
            if expected:
                assert "etag" in answer.headers["access-control-expose-headers"].lower()
    finally:
        for key in keys:
            await storage.delete(key)
