"""What every media store shares: its errors (translated from boto3 once), the stored-object record,
the store protocol, key joining, the hashing reader and the S3 client settings."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from storage.errors import PersistenceError

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


class StorageError(PersistenceError):
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

    def copy_object(
        self, source: str, key: str, sha256: str, size: int, content_type: str
    ) -> StoredObject: ...

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]: ...

    def etag_of(self, bucket: str, key: str) -> str | None: ...

    def presign_object(self, bucket: str, key: str, expires: int = 3600) -> str: ...

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
