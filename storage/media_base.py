"""What every media store shares: its errors, the stored-object record, the store protocol, key joining
and the hashing reader. Nothing here imports boto3 (the S3 client, its settings and the translation of its
errors are :mod:`storage.s3`), so naming a store or catching its errors costs no boto3 import."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from storage.errors import PersistenceError

PART_SIZE = 8 * 1024 * 1024
#: Self-copies (to attach the sha256) stay one CopyObject up to S3's 5 GB limit.
SINGLE_COPY_LIMIT = 5 * 1024**3
SHA256_METADATA = "sha256"


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
