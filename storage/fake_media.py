"""An in-memory :class:`~storage.media.MediaStore` for unit tests: same interface, same errors, no I/O."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote

from storage.media_base import HashingReader, StorageError, StoredObject, join_key


@dataclass
class _Blob:
    data: bytes
    content_type: str
    sha256: str
    puts: int = 1


@dataclass
class InMemoryMediaStore:
    """A thread-safe dict of objects keyed like :class:`~storage.media.S3MediaStore` keys them.

    Attributes:
        bucket, prefix: as for the S3 store (the prefix is prepended to every key).
        fail_puts: the next this-many puts raise a retryable :class:`StorageError` (then succeed).
        available: False makes :meth:`check` and every call fail as if the endpoint were down.
    """

    bucket: str = "letzflow"
    prefix: str = ""
    fail_puts: int = 0
    available: bool = True
    objects: dict[str, _Blob] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put_stream(
        self, key: str, chunks: Iterable[bytes], content_type: str, expected_size: int | None = None
    ) -> StoredObject:
        """Store the chunks; a size other than ``expected_size`` raises a retryable StorageError."""
        full = self._full(key)
        self._reachable()
        reader = HashingReader(chunks)
        data = reader.read()
        if expected_size is not None and reader.size != expected_size:
            self.objects.pop(full, None)
            raise StorageError(
                f"short copy of {full!r}: read {reader.size} bytes, the source announced {expected_size}",
                retryable=True,
                code="SizeMismatch",
            )
        return self._store(key, full, data, content_type, reader.sha256)

    def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        full = self._full(key)
        self._reachable()
        return self._store(key, full, bytes(data), content_type, hashlib.sha256(data).hexdigest())

    def get_bytes(self, key: str) -> bytes:
        self._reachable()
        blob = self.objects.get(self._full(key))
        if blob is None:
            raise StorageError(f"no object {self._full(key)!r} in bucket {self.bucket!r}", code="NoSuchKey")
        return blob.data

    def copy_object(self, source: str, key: str, sha256: str, size: int, content_type: str) -> StoredObject:
        data = self.get_bytes(source)
        if hashlib.sha256(data).hexdigest() != sha256 or len(data) != size:
            raise StorageError(
                f"verification of {self._full(key)!r} failed", retryable=True, code="VerifyFailed"
            )
        return self.put_bytes(key, data, content_type)

    def etag_of(self, bucket: str, key: str) -> str | None:
        blob = self.objects.get(key) if bucket == self.bucket else None
        return f'"{blob.sha256[:32]}"' if blob is not None else None

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        data = self.get_bytes(key)
        for start in range(0, len(data), chunk_size):
            yield data[start : start + chunk_size]

    def presign_object(self, bucket: str, key: str, expires: int = 3600) -> str:
        """A fake URL naming any bucket's object (never fetchable)."""
        return f"memory://{bucket}/{quote(key)}?expires={expires}"

    def head(self, key: str) -> StoredObject | None:
        self._reachable()
        blob = self.objects.get(self._full(key))
        if blob is None:
            return None
        return StoredObject(key, blob.sha256, len(blob.data), blob.content_type)

    def presign(self, key: str, expires: int = 3600) -> str:
        """A fake URL naming the bucket, key and expiry (never fetchable)."""
        return f"memory://{self.bucket}/{quote(self._full(key))}?expires={expires}"

    def check(self) -> None:
        self._reachable()

    def list_keys(self, prefix: str = "") -> list[str]:
        self._reachable()
        start = join_key(self.prefix, prefix) if prefix.strip("/") else "/".join(self._prefix_parts())
        if prefix.endswith("/") and start:
            start += "/"
        cut = len("/".join(self._prefix_parts())) + 1 if self._prefix_parts() else 0
        with self._lock:
            return sorted(k[cut:] for k in self.objects if k.startswith(start))

    def delete(self, key: str) -> None:
        with self._lock:
            self.objects.pop(self._full(key), None)

    def puts(self, key: str) -> int:
        """How many times ``key`` was written (overwrites included): tests check idempotency with it."""
        blob = self.objects.get(self._full(key))
        return blob.puts if blob else 0

    def _store(self, key: str, full: str, data: bytes, content_type: str, sha256: str) -> StoredObject:
        with self._lock:
            if self.fail_puts > 0:
                self.fail_puts -= 1
                raise StorageError(f"injected failure storing {full!r}", retryable=True, code="Injected")
            previous = self.objects.get(full)
            self.objects[full] = _Blob(data, content_type, sha256, (previous.puts + 1) if previous else 1)
        return StoredObject(key, sha256, len(data), content_type)

    def _full(self, key: str) -> str:
        return join_key(self.prefix, key)

    def _prefix_parts(self) -> list[str]:
        return [p for p in self.prefix.split("/") if p]

    def _reachable(self) -> None:
        if not self.available:
            raise StorageError(
                f"S3 endpoint unreachable (bucket {self.bucket!r}): is it running?",
                retryable=True,
                code="EndpointConnectionError",
            )
