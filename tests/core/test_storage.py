"""The object-storage contract, proven over HTTP against both backends.

The file backend runs behind its real Litestar routes; the S3 backend against a real SeaweedFS server
(``seaweedfs`` fixture). Uploads are multipart POSTs built the way a browser builds them.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
import time_machine
from litestar import Litestar
from litestar.datastructures import State
from litestar.testing import AsyncTestClient

from portal.core.storage import (
    InvalidKey,
    ObjectExists,
    ObjectNotFound,
    ObjectStorage,
    PresignedUpload,
    StorageUnavailable,
    UploadRejected,
    open_storage,
)
from portal.core.storage.file import FileStorage
from portal.core.storage.routes import UPLOAD_BODY_LIMIT, StorageController
from portal.core.storage.s3 import S3Storage
from tests.fixtures.seaweedfs import SeaweedFS

BASE_URL = "http://testserver.local"
SECRET = b"storage-test-secret-0123456789ab"
BUCKET = "portal-contract"
JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


@dataclass
class Backend:
    name: str
    storage: ObjectStorage
    http: httpx.AsyncClient
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    def expect(self, *, file: tuple[int, str], s3: tuple[int, str]) -> tuple[int, str]:
        """Where the servers legitimately differ: the file backend's codes vs what SeaweedFS answers."""
        return file if self.name == "file" else s3


def file_app(storage: object) -> Litestar:
    return Litestar(route_handlers=[StorageController], state=State({"storage": storage}))


@pytest_asyncio.fixture(params=["file", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    prefix = f"t/{uuid.uuid4().hex}"
    if request.param == "file":
        storage = FileStorage(tmp_path / "objects", SECRET, BASE_URL)
        await storage.ensure_ready()
        async with AsyncTestClient(app=file_app(storage), base_url=BASE_URL) as client:
            yield Backend("file", storage, client, prefix)
    else:
        server: SeaweedFS = request.getfixturevalue("seaweedfs")
        s3 = S3Storage(BUCKET, server.endpoint_url, server.region, server.access_key, server.secret_key)
        await s3.ensure_ready()
        async with httpx.AsyncClient(timeout=30) as client:
            yield Backend("s3", s3, client, prefix)


async def browser_post(
    http: httpx.AsyncClient,
    slot: PresignedUpload,
    data: bytes,
    *,
    override: dict[str, str] | None = None,
    part_type: str | None = None,
) -> httpx.Response:
    fields = {**slot.fields, **(override or {})}
    # httpx, like a browser's FormData in this order, sends the fields first and the file part last.
    files = {"file": ("photo.jpg", data, part_type or fields.get("Content-Type", "application/octet-stream"))}
    return await http.post(slot.url, data=fields, files=files)


def error_code(response: httpx.Response) -> str:
    match = re.search(r"<Code>([^<]*)</Code>", response.text)
    assert match, f"no S3 error body: {response.status_code} {response.text!r}"
    return match.group(1)


def signature_field(slot: PresignedUpload) -> str:
    return "x-amz-signature" if "x-amz-signature" in slot.fields else "signature"


# -- upload and download ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_browser_upload_then_signed_download(backend: Backend) -> None:
    key = backend.key("evidence/photo.jpg")
    before = datetime.now(UTC)
    slot = await backend.storage.presign_upload(key, content_type="image/jpeg", max_size=10_000)
    assert slot.key == key
    assert before + timedelta(minutes=9) < slot.expires_at <= before + timedelta(minutes=10, seconds=2)
    assert slot.fields["Content-Type"] == "image/jpeg"

    response = await browser_post(backend.http, slot, JPEG)
    assert response.status_code == 204, response.text

    info = await backend.storage.head(key)
    assert info is not None
    assert (info.key, info.size, info.content_type) == (key, len(JPEG), "image/jpeg")
    assert info.etag

    url = await backend.storage.presign_download(key, filename="现场 photo.jpg")
    got = await backend.http.get(url)
    assert got.status_code == 200, got.text
    assert got.content == JPEG
    assert got.headers["content-type"] == "image/jpeg"
    disposition = got.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''" + quote("现场 photo.jpg", safe="") in disposition


@pytest.mark.asyncio
async def test_download_can_override_content_type(backend: Backend) -> None:
    key = backend.key("report.bin")
    await backend.storage.put(key, b"%PDF-1.7", "application/octet-stream")
    url = await backend.storage.presign_download(key, content_type="application/pdf")
    got = await backend.http.get(url)
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pdf"


@pytest.mark.asyncio
async def test_upload_over_max_size_is_refused_by_the_server(backend: Backend) -> None:
    key = backend.key("big.jpg")
    slot = await backend.storage.presign_upload(key, content_type="image/jpeg", max_size=100)
    response = await browser_post(backend.http, slot, b"x" * 101)
    assert response.status_code == 400
    assert error_code(response) == "EntityTooLarge"
    assert await backend.storage.head(key) is None


@pytest.mark.asyncio
async def test_upload_under_min_size_is_refused(backend: Backend) -> None:
    key = backend.key("tiny.jpg")
    slot = await backend.storage.presign_upload(key, content_type="image/jpeg", min_size=10, max_size=100)
    response = await browser_post(backend.http, slot, b"x" * 5)
    assert response.status_code == 400
    assert error_code(response) == "EntityTooSmall"
    assert await backend.storage.head(key) is None


@pytest.mark.asyncio
async def test_upload_with_other_content_type_is_refused(backend: Backend) -> None:
    key = backend.key("typed.jpg")
    slot = await backend.storage.presign_upload(key, content_type="image/jpeg", max_size=10_000)
    response = await browser_post(backend.http, slot, JPEG, override={"Content-Type": "text/html"})
    expected = backend.expect(file=(400, "InvalidPolicyDocument"), s3=(403, "AccessDenied"))
    assert (response.status_code, error_code(response)) == expected
    assert await backend.storage.head(key) is None


@pytest.mark.asyncio
async def test_upload_to_another_key_is_refused(backend: Backend) -> None:
    key = backend.key("mine.jpg")
    other = backend.key("someone-elses.jpg")
    slot = await backend.storage.presign_upload(key, content_type="image/jpeg", max_size=10_000)
    response = await browser_post(backend.http, slot, JPEG, override={"key": other})
    expected = backend.expect(file=(400, "InvalidPolicyDocument"), s3=(403, "AccessDenied"))
    assert (response.status_code, error_code(response)) == expected
    assert await backend.storage.head(key) is None
    assert await backend.storage.head(other) is None


@pytest.mark.asyncio
async def test_upload_with_tampered_signature_is_refused(backend: Backend) -> None:
    key = backend.key("signed.jpg")
    slot = await backend.storage.presign_upload(key, content_type="image/jpeg", max_size=10_000)
    name = signature_field(slot)
    forged = ("0" if slot.fields[name][0] != "0" else "1") + slot.fields[name][1:]
    response = await browser_post(backend.http, slot, JPEG, override={name: forged})
    expected = backend.expect(file=(403, "AccessDenied"), s3=(403, "SignatureDoesNotMatch"))
    assert (response.status_code, error_code(response)) == expected
    assert await backend.storage.head(key) is None


@pytest.mark.asyncio
async def test_expired_upload_and_download_are_refused(backend: Backend) -> None:
    key = backend.key("late.jpg")
    stored = backend.key("stored.jpg")
    await backend.storage.put(stored, JPEG, "image/jpeg")
    # Signed ten minutes ago for one second: expired now, without waiting for it.
    with time_machine.travel(datetime.now(UTC) - timedelta(minutes=10), tick=False):
        slot = await backend.storage.presign_upload(
            key, content_type="image/jpeg", max_size=10_000, expires_in=timedelta(seconds=1)
        )
        url = await backend.storage.presign_download(stored, expires_in=timedelta(seconds=1))

    response = await browser_post(backend.http, slot, JPEG)
    expected = backend.expect(file=(403, "RequestExpired"), s3=(403, "AccessDenied"))
    assert (response.status_code, error_code(response)) == expected
    assert await backend.storage.head(key) is None

    got = await backend.http.get(url)
    assert got.status_code == 403
    assert JPEG not in got.content


@pytest.mark.asyncio
async def test_download_url_for_another_key_is_refused(backend: Backend) -> None:
    mine, other = backend.key("a.jpg"), backend.key("b.jpg")
    await backend.storage.put(mine, b"mine", "image/jpeg")
    await backend.storage.put(other, b"other", "image/jpeg")
    url = await backend.storage.presign_download(mine)
    assert mine in url
    got = await backend.http.get(url.replace(mine, other))
    assert got.status_code == 403
    assert b"other" not in got.content


@pytest.mark.asyncio
async def test_download_of_missing_object_is_404(backend: Backend) -> None:
    url = await backend.storage.presign_download(backend.key("never-uploaded.jpg"))
    got = await backend.http.get(url)
    assert got.status_code == 404
    assert error_code(got) == "NoSuchKey"


# -- direct access ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_second_post_within_the_policy_replaces_on_both_backends(backend: Backend) -> None:
    """S3 cannot refuse a POST its policy allows, so the file backend does not either: the backends agree,
    and nothing may trust a browser-writable key to stay put (evidence reads it once, then never)."""
    key = backend.key("staging/once.jpg")
    slot = await backend.storage.presign_upload(key, content_type="image/jpeg", max_size=10_000)
    assert (await browser_post(backend.http, slot, JPEG)).status_code == 204
    assert (await browser_post(backend.http, slot, b"replaced")).status_code == 204
    assert await backend.storage.read(key) == b"replaced"
    head = await backend.storage.head(key)
    assert head is not None and head.size == len(b"replaced")


async def test_put_read_delete(backend: Backend) -> None:
    key = backend.key("thumbs/1.webp")
    info = await backend.storage.put(key, b"RIFF....WEBP", "image/webp")
    assert (info.key, info.size, info.content_type) == (key, 12, "image/webp")
    assert await backend.storage.read(key) == b"RIFF....WEBP"
    head = await backend.storage.head(key)
    assert head is not None and head.size == 12 and head.content_type == "image/webp"

    with pytest.raises(ObjectExists):
        await backend.storage.put(key, b"overwritten", "image/webp")
    assert await backend.storage.read(key) == b"RIFF....WEBP"

    await backend.storage.delete(key)
    assert await backend.storage.head(key) is None
    with pytest.raises(ObjectNotFound):
        await backend.storage.read(key)
    await backend.storage.delete(key)  # deleting what is gone is fine, as in S3


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "bad", ["../x", "a/../../x", "/abs", "a b", "a//b", "a/./b", "end/", "", "é", "k" * 513]
)
async def test_invalid_keys_are_refused(backend: Backend, bad: str) -> None:
    with pytest.raises(InvalidKey):
        await backend.storage.put(bad, b"x", "text/plain")
    with pytest.raises(InvalidKey):
        await backend.storage.head(bad)
    with pytest.raises(InvalidKey):
        await backend.storage.read(bad)
    with pytest.raises(InvalidKey):
        await backend.storage.delete(bad)
    with pytest.raises(InvalidKey):
        await backend.storage.presign_upload(bad, content_type="image/jpeg", max_size=10)
    with pytest.raises(InvalidKey):
        await backend.storage.presign_download(bad)


@pytest.mark.asyncio
async def test_presign_refuses_nonsense_arguments(backend: Backend) -> None:
    key = backend.key("x.jpg")
    with pytest.raises(ValueError):
        await backend.storage.presign_upload(key, content_type="image/jpeg\r\nX-Evil: 1", max_size=10)
    with pytest.raises(ValueError):
        await backend.storage.presign_upload(key, content_type="image/jpeg", max_size=10, min_size=11)
    with pytest.raises(ValueError):
        await backend.storage.presign_upload(
            key, content_type="image/jpeg", max_size=10, expires_in=timedelta(seconds=0)
        )
    with pytest.raises(ValueError):
        await backend.storage.presign_download(key, expires_in=timedelta(days=8))


@pytest.mark.asyncio
async def test_check_passes_on_a_ready_backend(backend: Backend) -> None:
    await backend.storage.check()
    await backend.storage.ensure_ready()  # idempotent


# -- S3 specifics ----------------------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.asyncio
async def test_s3_check_fails_clearly_when_the_endpoint_is_down() -> None:
    storage = S3Storage(BUCKET, f"http://127.0.0.1:{closed_port()}", "us-east-1", "k", "s")
    with pytest.raises(StorageUnavailable, match="cannot reach S3 endpoint"):
        await storage.check()


@pytest.mark.asyncio
async def test_s3_check_fails_for_a_missing_bucket_and_ensure_ready_creates_it(seaweedfs: SeaweedFS) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    storage = S3Storage(
        bucket, seaweedfs.endpoint_url, "us-east-1", seaweedfs.access_key, seaweedfs.secret_key
    )
    with pytest.raises(StorageUnavailable, match="does not exist"):
        await storage.check()
    await storage.ensure_ready()
    await storage.check()
    seaweedfs.client().delete_bucket(Bucket=bucket)


@pytest.mark.asyncio
async def test_s3_check_fails_for_wrong_credentials(seaweedfs: SeaweedFS) -> None:
    storage = S3Storage(BUCKET, seaweedfs.endpoint_url, "us-east-1", seaweedfs.access_key, "not-the-secret")
    with pytest.raises(StorageUnavailable, match="denied"):
        await storage.check()


def test_open_storage_picks_the_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    common = {"secret": "s3cret", "public_base_url": "http://portal.example/"}
    relative = open_storage("file://var/objects", **common)
    assert isinstance(relative, FileStorage)
    assert relative.root == tmp_path / "var" / "objects"
    assert relative.public_base_url == "http://portal.example"
    absolute = open_storage(f"file://{tmp_path}/abs", **common)
    assert isinstance(absolute, FileStorage) and absolute.root == tmp_path / "abs"

    s3 = open_storage(
        "s3://evidence",
        **common,
        s3_endpoint="http://127.0.0.1:1",
        s3_region="us-east-1",
        s3_access_key="k",
        s3_secret_key="s",
    )
    assert isinstance(s3, S3Storage) and s3.bucket == "evidence"

    for bad in ("s3://ab", "s3://bucket/path", "ftp://x", "file://"):
        with pytest.raises(ValueError):
            open_storage(bad, **common)
    with pytest.raises(ValueError):
        open_storage("file://var/objects", secret="", public_base_url="http://x")


# -- file backend specifics ------------------------------------------------------------------------------


@pytest_asyncio.fixture
async def file_backend(tmp_path: Path) -> AsyncIterator[tuple[FileStorage, httpx.AsyncClient]]:
    storage = FileStorage(tmp_path / "store", SECRET, BASE_URL)
    await storage.ensure_ready()
    async with AsyncTestClient(app=file_app(storage), base_url=BASE_URL) as client:
        yield storage, client


@pytest.mark.asyncio
async def test_file_upload_with_unsigned_extra_field_is_refused(
    file_backend: tuple[FileStorage, httpx.AsyncClient],
) -> None:
    storage, http = file_backend
    slot = await storage.presign_upload("k/extra.jpg", content_type="image/jpeg", max_size=10_000)
    response = await browser_post(http, slot, JPEG, override={"acl": "public-read"})
    assert (response.status_code, error_code(response)) == (400, "InvalidPolicyDocument")
    ignored = await browser_post(http, slot, JPEG, override={"x-ignore-client": "pwa"})
    assert ignored.status_code == 204


@pytest.mark.asyncio
async def test_file_upload_without_file_or_policy_is_refused(
    file_backend: tuple[FileStorage, httpx.AsyncClient],
) -> None:
    storage, http = file_backend
    slot = await storage.presign_upload("k/nofile.jpg", content_type="image/jpeg", max_size=10_000)
    no_file = await http.post(slot.url, data=slot.fields, files={"other": ("a", b"x", "image/jpeg")})
    assert (no_file.status_code, error_code(no_file)) == (400, "InvalidArgument")
    no_policy = await http.post(
        slot.url, data={"key": "k/nofile.jpg", "Content-Type": "image/jpeg"}, files={"file": ("a", b"x")}
    )
    assert (no_policy.status_code, error_code(no_policy)) == (403, "AccessDenied")
    assert await storage.head("k/nofile.jpg") is None


@pytest.mark.asyncio
async def test_file_upload_body_limit_answers_like_s3(
    file_backend: tuple[FileStorage, httpx.AsyncClient],
) -> None:
    _, http = file_backend
    # The announced length alone is enough for the route to refuse before reading anything.
    response = await http.post(
        f"{BASE_URL}/storage/upload",
        content=b"--x--\r\n",
        headers={
            "content-type": "multipart/form-data; boundary=x",
            "content-length": str(UPLOAD_BODY_LIMIT + 1),
        },
    )
    assert (response.status_code, error_code(response)) == (400, "EntityTooLarge")


@pytest.mark.asyncio
async def test_file_download_headers(file_backend: tuple[FileStorage, httpx.AsyncClient]) -> None:
    storage, http = file_backend
    await storage.put("k/doc.jpg", JPEG, "image/jpeg")
    got = await http.get(await storage.presign_download("k/doc.jpg", expires_in=timedelta(minutes=5)))
    assert got.status_code == 200
    max_age = int(got.headers["cache-control"].removeprefix("private, max-age="))
    assert 295 <= max_age <= 300
    assert got.headers["content-disposition"] == "inline"
    assert got.headers["x-content-type-options"] == "nosniff"
    unsigned = await http.get(f"{BASE_URL}/storage/o/k/doc.jpg")
    assert (unsigned.status_code, error_code(unsigned)) == (403, "AccessDenied")


@pytest.mark.asyncio
async def test_file_signatures_depend_on_the_secret(tmp_path: Path) -> None:
    ours = FileStorage(tmp_path, SECRET, BASE_URL)
    await ours.ensure_ready()
    theirs = FileStorage(tmp_path, b"another-secret", BASE_URL)
    slot = await theirs.presign_upload("k/x.jpg", content_type="image/jpeg", max_size=10)
    with pytest.raises(UploadRejected) as rejected:
        ours.accept_upload(slot.fields, b"x", "image/jpeg")
    assert (rejected.value.code, rejected.value.status_code) == ("AccessDenied", 403)


@pytest.mark.asyncio
async def test_file_check_fails_for_unusable_directory(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match="does not exist"):
        await FileStorage(tmp_path / "nowhere", SECRET, BASE_URL).check()
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageUnavailable):
        await FileStorage(blocker / "store", SECRET, BASE_URL).ensure_ready()


@pytest.mark.asyncio
async def test_file_routes_answer_404_when_storage_is_not_a_file_backend() -> None:
    s3 = S3Storage(BUCKET, "http://127.0.0.1:1", "us-east-1", "k", "s")
    async with AsyncTestClient(app=file_app(s3), base_url=BASE_URL) as client:
        assert (await client.post("/storage/upload", data={"a": "b"})).status_code == 404
        assert (await client.get("/storage/o/k/x.jpg?expires=1&signature=x")).status_code == 404


@pytest.mark.asyncio
async def test_file_delete_leaves_no_empty_folders(
    file_backend: tuple[FileStorage, httpx.AsyncClient],
) -> None:
    """S3 has no folders: deleting the last object of a per-upload folder removes the folder too (data and
    metadata sides), and a folder that still holds an object stays."""
    storage, _http = file_backend
    await storage.put("evidence/t1/u1/original", JPEG, "image/jpeg")
    await storage.put("evidence/t1/u2/original", JPEG, "image/jpeg")
    await storage.put("evidence/t1/u2/thumb.jpg", JPEG, "image/jpeg")
    await storage.delete("evidence/t1/u1/original")
    await storage.delete("evidence/t1/u2/thumb.jpg")
    folders = {p.relative_to(storage.root).as_posix() for p in storage.root.rglob("*") if p.is_dir()}
    assert not any(f.endswith("t1/u1") for f in folders)
    assert any(f.endswith("t1/u2") for f in folders)  # the original is still there
    await storage.delete("evidence/t1/u2/original")
    folders = {p.relative_to(storage.root).as_posix() for p in storage.root.rglob("*") if p.is_dir()}
    assert not any("evidence" in f for f in folders), folders
    assert await storage.head("evidence/t1/u2/original") is None
