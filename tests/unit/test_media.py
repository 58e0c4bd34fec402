"""The media store's pure parts: the fake store, the hashing reader, key prefixing, error translation."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import Stubber

from storage.fake_media import InMemoryMediaStore
from storage.media import HashingReader, S3MediaStore, StorageError, join_key, make_s3_client, translate


def chunks_of(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


class TestHashingReader:
    def test_reads_exact_sizes_across_chunk_boundaries(self) -> None:
        data = bytes(range(256)) * 40
        reader = HashingReader(chunks_of(data, 333))
        parts = []
        while part := reader.read(1000):
            parts.append(part)
        assert [len(p) for p in parts[:-1]] == [1000] * (len(parts) - 1)
        assert b"".join(parts) == data
        assert reader.size == len(data)
        assert reader.sha256 == hashlib.sha256(data).hexdigest()

    def test_read_all_and_empty_chunks(self) -> None:
        reader = HashingReader([b"", b"ab", b"", b"cd"])
        assert reader.read() == b"abcd"
        assert reader.read() == b""
        assert reader.size == 4
        assert reader.sha256 == hashlib.sha256(b"abcd").hexdigest()

    def test_is_not_seekable_so_boto3_streams_it(self) -> None:
        reader = HashingReader([])
        assert reader.readable() and not reader.seekable()
        assert reader.sha256 == hashlib.sha256(b"").hexdigest()

    def test_pulls_chunks_lazily(self) -> None:
        pulled = []

        def source() -> Iterator[bytes]:
            for i in range(100):
                pulled.append(i)
                yield b"x" * 10

        reader = HashingReader(source())
        reader.read(25)
        assert len(pulled) == 3


@pytest.mark.parametrize(
    ("prefix", "key", "expected"),
    [
        ("", "batch/1/a.png", "batch/1/a.png"),
        ("media", "batch/1/a.png", "media/batch/1/a.png"),
        ("/media/", "/batch//1/a.png", "media/batch/1/a.png"),
        ("a/b//", "c", "a/b/c"),
    ],
)
def test_join_key_has_no_leading_or_double_slashes(prefix: str, key: str, expected: str) -> None:
    assert join_key(prefix, key) == expected


@pytest.mark.parametrize("key", ["", "/", "a/../b"])
def test_join_key_rejects_bad_keys(key: str) -> None:
    with pytest.raises(ValueError):
        join_key("p", key)


class TestInMemoryStore:
    def test_stream_put_records_hash_size_and_type(self) -> None:
        store = InMemoryMediaStore()
        data = b"png-bytes" * 1000
        obj = store.put_stream("b/1/x.png", chunks_of(data, 100), "image/png", expected_size=len(data))
        assert (obj.key, obj.size, obj.content_type) == ("b/1/x.png", len(data), "image/png")
        assert obj.sha256 == hashlib.sha256(data).hexdigest()
        assert store.head("b/1/x.png") == obj
        assert store.get_bytes("b/1/x.png") == data

    def test_short_stream_raises_retryable_and_stores_nothing(self) -> None:
        store = InMemoryMediaStore()
        with pytest.raises(StorageError) as info:
            store.put_stream("k.png", [b"abc"], "image/png", expected_size=10)
        assert info.value.retryable and info.value.code == "SizeMismatch"
        assert store.head("k.png") is None

    def test_retry_overwrites_the_same_key(self) -> None:
        store = InMemoryMediaStore()
        store.put_bytes("k.png", b"first", "image/png")
        store.put_bytes("k.png", b"second", "image/png")
        assert store.get_bytes("k.png") == b"second"
        assert store.puts("k.png") == 2
        assert store.list_keys() == ["k.png"]

    def test_prefix_applies_to_storage_but_not_to_returned_keys(self) -> None:
        store = InMemoryMediaStore(prefix="/tenant/")
        store.put_bytes("b/1/a.png", b"a", "image/png")
        store.put_bytes("b/2/a.png", b"a", "image/png")
        assert set(store.objects) == {"tenant/b/1/a.png", "tenant/b/2/a.png"}
        assert store.list_keys("b/1/") == ["b/1/a.png"]
        assert store.list_keys() == ["b/1/a.png", "b/2/a.png"]

    def test_missing_key(self) -> None:
        store = InMemoryMediaStore()
        assert store.head("nope") is None
        with pytest.raises(StorageError) as info:
            store.get_bytes("nope")
        assert not info.value.retryable

    def test_injected_failures_then_success(self) -> None:
        store = InMemoryMediaStore(fail_puts=1)
        with pytest.raises(StorageError) as info:
            store.put_bytes("k", b"x", "text/plain")
        assert info.value.retryable
        assert store.put_bytes("k", b"x", "text/plain").size == 1

    def test_unavailable_store_fails_retryably(self) -> None:
        store = InMemoryMediaStore(available=False)
        with pytest.raises(StorageError) as info:
            store.check()
        assert info.value.retryable and "letzflow" in str(info.value)

    def test_presign_names_key_and_expiry(self) -> None:
        url = InMemoryMediaStore(bucket="bk", prefix="p").presign("a b.png", expires=60)
        assert url == "memory://bk/p/a%20b.png?expires=60"


def client_error(code: str, status: int) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "Op")


@pytest.mark.parametrize(
    ("exc", "retryable", "mentions"),
    [
        (client_error("NoSuchBucket", 404), False, "does not exist"),
        (client_error("AccessDenied", 403), False, "AWS_"),
        (client_error("InvalidAccessKeyId", 403), False, "denied"),
        (client_error("InternalError", 500), True, "InternalError"),
        (client_error("SlowDown", 503), True, "SlowDown"),
        (client_error("InvalidArgument", 400), False, "InvalidArgument"),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), True, "S3_ENDPOINT_URL"),
        (ConnectTimeoutError(endpoint_url="http://127.0.0.1:1"), True, "timeout"),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), True, "timeout"),
    ],
)
def test_translate_classifies_botocore_errors(exc: Exception, retryable: bool, mentions: str) -> None:
    error = translate(exc, "my-bucket", "upload k")
    assert error.retryable is retryable
    assert mentions.lower() in str(error).lower()


def test_check_missing_bucket_names_bucket_and_fix() -> None:
    error = translate(client_error("404", 404), "media-bkt", "check")
    assert "media-bkt" in str(error) and "S3_BUCKET" in str(error) and not error.retryable


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> tuple[S3MediaStore, Stubber]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = make_s3_client("http://127.0.0.1:9")
    stubber = Stubber(client)
    stubber.activate()
    return S3MediaStore(client, "bkt", prefix="/pre/"), stubber


def test_s3_store_prefixes_keys_and_stores_sha256(stubbed: tuple[S3MediaStore, Stubber]) -> None:
    store, stubber = stubbed
    digest = hashlib.sha256(b"hello").hexdigest()
    stubber.add_response(
        "put_object",
        {},
        {
            "Bucket": "bkt",
            "Key": "pre/b/1/x.png",
            "Body": b"hello",
            "ContentType": "image/png",
            "Metadata": {"sha256": digest},
        },
    )
    stubber.add_response(
        "head_object",
        {"ContentLength": 5, "ContentType": "image/png", "Metadata": {"sha256": digest}},
        {"Bucket": "bkt", "Key": "pre/b/1/x.png"},
    )
    obj = store.put_stream("b/1/x.png", [b"hel", b"lo"], "image/png", expected_size=5)
    assert (obj.key, obj.size, obj.sha256) == ("b/1/x.png", 5, digest)
    stubber.assert_no_pending_responses()


def test_s3_store_trusts_an_etag_that_is_the_md5_of_the_bytes_sent(
    stubbed: tuple[S3MediaStore, Stubber],
) -> None:
    store, stubber = stubbed
    etag = '"' + hashlib.md5(b"hello").hexdigest() + '"'
    stubber.add_response("put_object", {"ETag": etag})  # and no head_object: the ETag verified the bytes
    obj = store.put_bytes("k", b"hello", "text/plain")
    assert (obj.size, obj.sha256) == (5, hashlib.sha256(b"hello").hexdigest())
    stubber.assert_no_pending_responses()


def test_s3_store_checks_with_head_when_the_etag_is_not_the_md5(
    stubbed: tuple[S3MediaStore, Stubber],
) -> None:
    store, stubber = stubbed
    stubber.add_response("put_object", {"ETag": '"0123456789abcdef0123456789abcdef-1"'})
    stubber.add_response("head_object", {"ContentLength": 3, "Metadata": {"sha256": "x"}})
    stubber.add_response("delete_object", {}, {"Bucket": "bkt", "Key": "pre/k"})
    with pytest.raises(StorageError) as info:
        store.put_bytes("k", b"hello", "text/plain")
    assert info.value.code == "VerifyFailed"
    stubber.assert_no_pending_responses()


def test_s3_store_deletes_object_when_stored_size_differs(stubbed: tuple[S3MediaStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_response("put_object", {})
    stubber.add_response("head_object", {"ContentLength": 3, "Metadata": {"sha256": "x"}})
    stubber.add_response("delete_object", {}, {"Bucket": "bkt", "Key": "pre/k"})
    with pytest.raises(StorageError) as info:
        store.put_bytes("k", b"hello", "text/plain")
    assert info.value.retryable and info.value.code == "VerifyFailed"
    stubber.assert_no_pending_responses()


def test_s3_store_lists_relative_keys(stubbed: tuple[S3MediaStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "pre/b/2.png"}, {"Key": "pre/b/1.png"}], "IsTruncated": False},
        {"Bucket": "bkt", "Prefix": "pre/b/"},
    )
    assert store.list_keys("b/") == ["b/1.png", "b/2.png"]


def test_s3_store_head_missing_is_none(stubbed: tuple[S3MediaStore, Stubber]) -> None:
    store, stubber = stubbed
    stubber.add_client_error("head_object", service_error_code="404", http_status_code=404)
    assert store.head("nope") is None
