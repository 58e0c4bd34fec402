"""The media store: a small interface, an S3 implementation (boto3, any S3-compatible endpoint), errors.

Keys given to a store are relative; the store prepends its prefix. Objects are private (no ACL is ever
set); shared links are presigned with an expiry. Every botocore error is translated here, once, into
:class:`StorageError`::

    StorageError            retryable=True:  endpoint down, timeouts, throttling, 5xx, a short upload
                            retryable=False: missing bucket or key, access denied, other 4xx

``InMemoryMediaStore`` (a fake for unit tests) lives in :mod:`storage.fake_media`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

PART_SIZE = 8 * 1024 * 1024
#: Self-copies (to attach the sha256) stay one CopyObject up to S3's 5 GB limit.
SINGLE_COPY_LIMIT = 5 * 1024**3
SHA256_METADATA = "sha256"
_RETRYABLE_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "InternalError",
    "ServiceUnavailable",
    "OperationAborted",
}


class StorageError(Exception):
    """A media-store operation failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.code = code


@dataclass(frozen=True)
class StoredObject:
    """One stored object: its relative key, hex sha256, size in bytes and content type."""

    key: str
    sha256: str
    size: int
    content_type: str


class MediaStore(Protocol):
    """Where copied media goes. Keys are relative to the store's prefix."""

    def put_stream(
        self, key: str, chunks: Iterable[bytes], content_type: str, expected_size: int | None = None
    ) -> StoredObject: ...

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject: ...

    def get_bytes(self, key: str) -> bytes: ...

    def head(self, key: str) -> StoredObject | None: ...

    def presign(self, key: str, expires: int = 3600) -> str: ...

    def check(self) -> None: ...

    def list_keys(self, prefix: str = "") -> list[str]: ...


def join_key(prefix: str, key: str) -> str:
    """``prefix/key`` with no leading slash and no empty segments.

    Raises:
        ValueError: the key is empty or has a ``..`` segment.
    """
    parts = [p for p in f"{prefix}/{key}".split("/") if p]
    if not key.strip("/") or ".." in parts:
        raise ValueError(f"invalid storage key {key!r}")
    return "/".join(parts)


class HashingReader:
    """A read-only, non-seekable file over an iterator of chunks; hashes (sha256) and counts its output.

    It holds at most one read's worth of chunks (plus one chunk), so memory follows the reader's ``size``.
    """

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending: deque[bytes] = deque()
        self._buffered = 0
        self._done = False
        self._hash = hashlib.sha256()
        self.size = 0

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left when ``size`` is negative or None); ``b""`` at the end."""
        limit = None if size is None or size < 0 else size
        while not self._done and (limit is None or self._buffered < limit):
            chunk = next(self._chunks, None)
            if chunk is None:
                self._done = True
            elif chunk:
                self._pending.append(bytes(chunk))
                self._buffered += len(chunk)
        want = self._buffered if limit is None else min(limit, self._buffered)
        pieces = []
        while want:
            piece = self._pending.popleft()
            if len(piece) > want:
                self._pending.appendleft(piece[want:])
                piece = piece[:want]
            pieces.append(piece)
            want -= len(piece)
        data = b"".join(pieces)
        self._buffered -= len(data)
        self._hash.update(data)
        self.size += len(data)
        return data


def make_s3_client(
    endpoint_url: str | None,
    *,
    connect_timeout: float = 5,
    read_timeout: float = 60,
    max_attempts: int = 3,
    session: boto3.session.Session | None = None,
) -> Any:
    """A boto3 S3 client with explicit timeouts; path-style addressing when an endpoint URL is given.

    ``max_attempts`` counts every try of a request, the first included (botocore's standard retry mode
    retries throttling, 5xx and connection errors). Credentials and region come from ``session`` (default:
    a new session, i.e. boto3's usual chain).
    """
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return (session or boto3.session.Session()).client("s3", endpoint_url=endpoint_url or None, config=config)


def transfer_config() -> TransferConfig:
    """Multipart above 8 MB in 8 MB parts, few threads and few parts in memory (bounded RSS)."""
    config = TransferConfig(
        multipart_threshold=PART_SIZE,
        multipart_chunksize=PART_SIZE,
        max_concurrency=2,
        preferred_transfer_client="classic",
    )
    config.max_in_memory_upload_chunks = 2
    return config


def translate(exc: Exception, bucket: str, action: str) -> StorageError:
    """The :class:`StorageError` for a botocore exception (callers raise it ``from exc``)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        detail = error.get("Message") or code
        if code == "NoSuchBucket" or (status == 404 and action == "check"):
            return StorageError(
                f"S3 bucket {bucket!r} does not exist: create it (e.g. `aws s3 mb s3://{bucket}`) "
                "or set S3_BUCKET to an existing bucket",
                code="NoSuchBucket",
            )
        if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403") or status == 403:
            return StorageError(
                f"access to S3 bucket {bucket!r} denied while trying to {action} ({detail}): "
                "check the AWS_* credentials and the bucket policy",
                code=code or "AccessDenied",
            )
        retryable = status >= 500 or status == 429 or code in _RETRYABLE_CODES
        return StorageError(f"S3 {action} failed: {code} {detail}".strip(), retryable=retryable, code=code)
    if isinstance(exc, EndpointConnectionError):
        return StorageError(
            f"S3 endpoint unreachable while trying to {action} in bucket {bucket!r} ({exc}): "
            "is it running, and is S3_ENDPOINT_URL right?",
            retryable=True,
            code="EndpointConnectionError",
        )
    if isinstance(exc, BotoCoreError):
        return StorageError(f"S3 {action} failed: {exc}", retryable=True, code=type(exc).__name__)
    return StorageError(f"S3 {action} failed: {type(exc).__name__}: {exc}", retryable=True)


class S3MediaStore:
    """A :class:`MediaStore` on an S3-compatible bucket, through an injected boto3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = "/".join(p for p in prefix.split("/") if p)

    def full_key(self, key: str) -> str:
        return join_key(self.prefix, key)

    def put_stream(
        self, key: str, chunks: Iterable[bytes], content_type: str, expected_size: int | None = None
    ) -> StoredObject:
        """Stream ``chunks`` to ``key`` (multipart above 8 MB, memory bounded) and verify what was stored.

        Up to 8 MB is one PutObject carrying the sha256. Larger objects are uploaded in parts, then copied
        onto themselves (server side) to attach the sha256, which is known only once the stream has ended.
        A failed multipart upload is aborted by boto3, leaving no object.

        Raises:
            StorageError: S3 failed, or the size differs from ``expected_size`` or from what S3 holds (the
                bad object is deleted; retryable).
            Exception: whatever iterating ``chunks`` raised (e.g. a broken download), unchanged.
        """
        full = self.full_key(key)
        source = iter(chunks)
        first: list[bytes] = []
        peeked = 0
        for chunk in source:
            first.append(chunk)
            peeked += len(chunk)
            if peeked >= PART_SIZE:
                break
        else:
            data = b"".join(first)
            self._verify_count(full, len(data), expected_size, uploaded=False)
            return self.put_bytes(key, data, content_type)
        body = HashingReader(itertools.chain(_drain(first), source))
        try:
            self.client.upload_fileobj(
                body, self.bucket, full, ExtraArgs={"ContentType": content_type}, Config=transfer_config()
            )
            self._verify_count(full, body.size, expected_size)
            self.client.copy(
                {"Bucket": self.bucket, "Key": full},
                self.bucket,
                full,
                ExtraArgs={
                    "Metadata": {SHA256_METADATA: body.sha256},
                    "MetadataDirective": "REPLACE",
                    "ContentType": content_type,
                },
                Config=TransferConfig(
                    multipart_threshold=SINGLE_COPY_LIMIT, preferred_transfer_client="classic"
                ),
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self.bucket, f"upload {full}") from exc
        return self._verify_stored(key, body.sha256, body.size, content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """One PutObject of ``data`` with its sha256 in the metadata, verified. Raises StorageError.

        The PutObject answer's ETag is the MD5 of the bytes the store holds (S3 and the S3-compatible stores,
        for a single-part object without SSE-KMS/SSE-C): when it is the MD5 of ``data``, the object is
        verified without a HEAD. Any other ETag (or none) is checked with a HEAD, as before.
        """
        full = self.full_key(key)
        digest = hashlib.sha256(data).hexdigest()
        try:
            answer = self.client.put_object(
                Bucket=self.bucket,
                Key=full,
                Body=data,
                ContentType=content_type,
                Metadata={SHA256_METADATA: digest},
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self.bucket, f"upload {full}") from exc
        if str(answer.get("ETag", "")).strip('"') == hashlib.md5(data, usedforsecurity=False).hexdigest():
            return StoredObject(key=key, sha256=digest, size=len(data), content_type=content_type)
        return self._verify_stored(key, digest, len(data), content_type)

    def get_bytes(self, key: str) -> bytes:
        """The whole object (manifests, tests). Raises StorageError (a missing key is not retryable)."""
        full = self.full_key(key)
        try:
            return self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read()  # type: ignore[no-any-return]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StorageError(f"no object {full!r} in bucket {self.bucket!r}", code="NoSuchKey") from exc
            raise translate(exc, self.bucket, f"download {full}") from exc
        except BotoCoreError as exc:
            raise translate(exc, self.bucket, f"download {full}") from exc

    def head(self, key: str) -> StoredObject | None:
        """The stored object's facts, or None when there is no such key. Raises StorageError."""
        full = self.full_key(key)
        try:
            meta = self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise translate(exc, self.bucket, f"inspect {full}") from exc
        except BotoCoreError as exc:
            raise translate(exc, self.bucket, f"inspect {full}") from exc
        return StoredObject(
            key=key,
            sha256=meta.get("Metadata", {}).get(SHA256_METADATA, ""),
            size=int(meta["ContentLength"]),
            content_type=meta.get("ContentType", "application/octet-stream"),
        )

    def presign(self, key: str, expires: int = 3600) -> str:
        """A GET URL for ``key`` valid ``expires`` seconds (no request is made)."""
        return self.client.generate_presigned_url(  # type: ignore[no-any-return]
            "get_object", Params={"Bucket": self.bucket, "Key": self.full_key(key)}, ExpiresIn=expires
        )

    def check(self) -> None:
        """Make sure the bucket exists and answers.

        Raises:
            StorageError: naming the bucket and the fix (missing bucket, access denied, endpoint down).
        """
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self.bucket, "check") from exc

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every relative key under ``prefix``, sorted. Raises StorageError."""
        full = "/".join(p for p in f"{self.prefix}/{prefix}".split("/") if p)
        if prefix.endswith("/") and full:
            full += "/"
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full
            ):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self.bucket, "list") from exc
        cut = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[cut:] for k in keys)

    def delete(self, key: str) -> None:
        """Remove ``key`` (absent keys are fine). Raises StorageError."""
        self._delete(self.full_key(key))

    def _delete(self, full: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=full)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, self.bucket, f"delete {full}") from exc

    def _verify_count(self, full: str, counted: int, expected: int | None, *, uploaded: bool = True) -> None:
        if expected is not None and counted != expected:
            if uploaded:
                self._delete_quietly(full)
            raise StorageError(
                f"short copy of {full!r}: read {counted} bytes, the source announced {expected}",
                retryable=True,
                code="SizeMismatch",
            )

    def _verify_stored(self, key: str, sha256: str, size: int, content_type: str) -> StoredObject:
        stored = self.head(key)
        if stored is None or stored.size != size or stored.sha256 != sha256:
            self._delete_quietly(self.full_key(key))
            found = "nothing" if stored is None else f"{stored.size} bytes, sha256 {stored.sha256 or '-'}"
            raise StorageError(
                f"verification of {self.full_key(key)!r} failed: sent {size} bytes, sha256 {sha256}; "
                f"the bucket holds {found}",
                retryable=True,
                code="VerifyFailed",
            )
        return StoredObject(key=key, sha256=sha256, size=size, content_type=content_type)

    def _delete_quietly(self, full: str) -> None:
        with contextlib.suppress(StorageError):
            self._delete(full)


def _drain(chunks: list[bytes]) -> Iterator[bytes]:
    chunks.reverse()
    while chunks:
        yield chunks.pop()
