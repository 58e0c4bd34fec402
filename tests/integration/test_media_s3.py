"""The S3 media store against a real S3 endpoint (moto's server in a child process), through boto3."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
import requests

from storage.media import PART_SIZE, S3MediaStore, StorageError, make_s3_client
from tests import fixtures_stack
from workers.stack import S3Server, free_port

# Bound here as well as in conftest so that this module also runs on its own.
s3_server = fixtures_stack.s3_server
s3_store = fixtures_stack.s3_store

pytestmark = pytest.mark.integration

MB = 1024 * 1024


def pattern(size: int, chunk: int = MB, seed: int = 0) -> Iterator[bytes]:
    """``size`` deterministic bytes in ``chunk``-sized pieces, generated on the fly."""
    block = hashlib.sha256(str(seed).encode()).digest() * (chunk // 32 + 1)
    sent = 0
    while sent < size:
        piece = block[: min(chunk, size - sent)]
        sent += len(piece)
        yield piece


def digest_of(chunks: Iterator[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def count_calls(store: S3MediaStore, operation: str) -> list[str]:
    calls: list[str] = []
    store.client.meta.events.register(f"before-call.s3.{operation}", lambda **kw: calls.append(operation))
    return calls


def test_small_stream_is_stored_with_sha256_and_size(s3_store: S3MediaStore) -> None:
    data = b"\x89PNG" + os.urandom(300_000)
    chunks = [data[i : i + 65536] for i in range(0, len(data), 65536)]
    obj = s3_store.put_stream("b/1/item/01-generate.png", chunks, "image/png", expected_size=len(data))
    assert obj.size == len(data) and obj.sha256 == hashlib.sha256(data).hexdigest()
    raw = s3_store.client.head_object(Bucket=s3_store.bucket, Key="b/1/item/01-generate.png")
    assert raw["Metadata"]["sha256"] == obj.sha256
    assert raw["ContentType"] == "image/png" and raw["ContentLength"] == len(data)
    assert s3_store.get_bytes("b/1/item/01-generate.png") == data
    assert s3_store.head("b/1/item/01-generate.png") == obj


def test_large_stream_goes_multipart_and_is_verified(s3_store: S3MediaStore) -> None:
    size = 3 * PART_SIZE + 12345
    parts = count_calls(s3_store, "UploadPart")
    obj = s3_store.put_stream("big/video.mp4", pattern(size, seed=1), "video/mp4", expected_size=size)
    assert len(parts) == 4
    assert obj.size == size and obj.sha256 == digest_of(pattern(size, seed=1))
    stored = s3_store.head("big/video.mp4")
    assert stored is not None and (stored.size, stored.sha256, stored.content_type) == (
        size,
        obj.sha256,
        "video/mp4",
    )


def test_retried_copy_overwrites_the_same_key(s3_store: S3MediaStore) -> None:
    s3_store.put_stream("k/out.png", pattern(PART_SIZE + 1, seed=2), "image/png")
    second = s3_store.put_stream("k/out.png", [b"retry"], "image/png", expected_size=5)
    assert s3_store.get_bytes("k/out.png") == b"retry"
    assert s3_store.head("k/out.png") == second
    assert s3_store.list_keys("k/") == ["k/out.png"]


def test_short_download_is_rejected_and_removed(s3_store: S3MediaStore) -> None:
    size = PART_SIZE + MB
    with pytest.raises(StorageError) as info:
        s3_store.put_stream("short.mp4", pattern(size), "video/mp4", expected_size=size + 100)
    assert info.value.retryable and info.value.code == "SizeMismatch"
    assert s3_store.head("short.mp4") is None


def test_failed_multipart_upload_leaves_nothing_behind(s3_store: S3MediaStore) -> None:
    def broken() -> Iterator[bytes]:
        yield from pattern(2 * PART_SIZE + MB)
        raise ConnectionError("download broke off")

    with pytest.raises(ConnectionError):
        s3_store.put_stream("broken.mp4", broken(), "video/mp4")
    assert s3_store.head("broken.mp4") is None
    uploads = s3_store.client.list_multipart_uploads(Bucket=s3_store.bucket)
    assert uploads.get("Uploads", []) == []


def test_prefix_is_prepended_in_the_bucket(s3_store: S3MediaStore) -> None:
    store = S3MediaStore(s3_store.client, s3_store.bucket, prefix="/tenant/media/")
    store.put_bytes("b/1/manifest.json", b"{}", "application/json")
    raw = s3_store.client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]
    assert [o["Key"] for o in raw] == ["tenant/media/b/1/manifest.json"]
    assert store.list_keys("b/") == ["b/1/manifest.json"]


def test_presigned_url_downloads_and_objects_are_private(s3_store: S3MediaStore, s3_server: S3Server) -> None:
    s3_store.put_bytes("share/a.png", b"image-bytes", "image/png")
    url = s3_store.presign("share/a.png", expires=120)
    assert "X-Amz-Expires=120" in url
    response = requests.get(url, timeout=5)
    assert response.status_code == 200 and response.content == b"image-bytes"
    assert requests.get(f"{s3_server.url}/{s3_store.bucket}/share/a.png", timeout=5).status_code == 403
    grants = s3_store.client.get_object_acl(Bucket=s3_store.bucket, Key="share/a.png")["Grants"]
    assert [g["Permission"] for g in grants] == ["FULL_CONTROL"]
    assert all("URI" not in g["Grantee"] for g in grants)


def test_missing_bucket_is_a_clear_permanent_error(s3_server: S3Server) -> None:
    store = S3MediaStore(s3_server.client(), "no-such-bucket")
    with pytest.raises(StorageError) as info:
        store.check()
    assert not info.value.retryable
    assert "no-such-bucket" in str(info.value) and "S3_BUCKET" in str(info.value)
    assert isinstance(info.value.__cause__, Exception)
    with pytest.raises(StorageError) as upload:
        store.put_bytes("a.png", b"x", "image/png")
    assert not upload.value.retryable and upload.value.code == "NoSuchBucket"


def test_endpoint_down_is_retryable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = make_s3_client(f"http://127.0.0.1:{free_port()}", connect_timeout=1, max_attempts=1)
    store = S3MediaStore(client, "letzflow")
    with pytest.raises(StorageError) as info:
        store.check()
    assert info.value.retryable and "letzflow" in str(info.value)
    with pytest.raises(StorageError) as upload:
        store.put_stream("a.png", [b"x"], "image/png")
    assert upload.value.retryable


def test_s3_down_then_back_on_the_same_port(tmp_path: Any) -> None:
    server = S3Server(dir=tmp_path)
    server.start()
    try:
        server.create_bucket("media")
        store = S3MediaStore(server.client(connect_timeout=1, read_timeout=2, max_attempts=1), "media")
        store.put_bytes("before.png", b"a", "image/png")
        server.pause()
        with pytest.raises(StorageError) as hung:
            store.put_bytes("during.png", b"b", "image/png")
        assert hung.value.retryable
        server.resume()
        assert store.get_bytes("before.png") == b"a"
        server.stop()
        with pytest.raises(StorageError) as down:
            store.check()
        assert down.value.retryable
        server.start()
        store.check()
        assert store.put_bytes("after.png", b"c", "image/png").size == 1
        assert store.head("before.png") is None
    finally:
        server.stop()


@pytest.mark.parametrize(
    "size_mb", [pytest.param(200, id="200MB"), pytest.param(1024, id="1GB", marks=pytest.mark.slow)]
)
def test_memory_stays_bounded_whatever_the_size(s3_store: S3MediaStore, size_mb: int) -> None:
    me = psutil.Process()
    before = me.memory_info().rss
    peak = before

    def watched() -> Iterator[bytes]:
        nonlocal peak
        for chunk in pattern(size_mb * MB):
            peak = max(peak, me.memory_info().rss)
            yield chunk

    obj = s3_store.put_stream("huge.bin", watched(), "application/octet-stream", expected_size=size_mb * MB)
    assert obj.size == size_mb * MB
    print(f"RSS grew by {(peak - before) / MB:.1f} MB")
    assert peak - before < 64 * MB, f"RSS grew by {(peak - before) / MB:.0f} MB"
    s3_store.delete("huge.bin")
