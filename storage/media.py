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
from collections.abc import Iterable, Iterator
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from storage.media_base import (
    PART_SIZE,
    SHA256_METADATA,
    SINGLE_COPY_LIMIT,
    HashingReader,
    MediaStore,
    StorageError,
    StoredObject,
    join_key,
)
from storage.s3 import make_s3_client, transfer_config, translate

__all__ = [
    "PART_SIZE",
    "SINGLE_COPY_LIMIT",
    "HashingReader",
    "MediaStore",
    "S3MediaStore",
    "StorageError",
    "StoredObject",
    "join_key",
    "make_s3_client",
    "transfer_config",
    "translate",
]


class S3MediaStore:
    """A :class:`MediaStore` on an S3-compatible bucket, through an injected boto3 client."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = "/".join(p for p in prefix.split("/") if p)

    @classmethod
    def at(cls, endpoint_url: str | None, bucket: str, prefix: str = "") -> S3MediaStore:
        """The store on ``bucket`` of the endpoint (None: AWS), through a client of the default timeouts."""
        return cls(make_s3_client(endpoint_url), bucket, prefix)

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

    def copy_object(self, source: str, key: str, sha256: str, size: int, content_type: str) -> StoredObject:
        """A server-side copy of the stored object ``source`` to ``key`` (same bucket and prefix; its
        metadata, sha256 included, is kept), verified against ``sha256`` and ``size``. Nothing passes
        through this process, whatever the size (boto3's managed copy goes multipart past 5 GiB).

        Raises:
            StorageError: the source is missing (``NoSuchKey``) or the copy failed or does not verify.
        """
        full = self.full_key(key)
        try:
            self.client.copy(
                {"Bucket": self.bucket, "Key": self.full_key(source)},
                self.bucket,
                full,
                Config=transfer_config(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                missing = f"no object {self.full_key(source)!r} in bucket {self.bucket!r} to reuse"
                raise StorageError(missing, code="NoSuchKey") from exc
            raise translate(exc, self.bucket, f"copy {source} to {full}") from exc
        except BotoCoreError as exc:
            raise translate(exc, self.bucket, f"copy {source} to {full}") from exc
        return self._verify_stored(key, sha256, size, content_type)

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
        return b"".join(self.iter_bytes(key))

    def iter_bytes(self, key: str, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        """The object streamed in chunks (memory bounded whatever its size).

        Raises:
            StorageError: the object is missing (``NoSuchKey``, not retryable) or the endpoint failed.
        """
        full = self.full_key(key)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=full)["Body"]
            yield from body.iter_chunks(chunk_size)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise StorageError(f"no object {full!r} in bucket {self.bucket!r}", code="NoSuchKey") from exc
            raise translate(exc, self.bucket, f"download {full}") from exc
        except BotoCoreError as exc:
            raise translate(exc, self.bucket, f"download {full}") from exc

    def etag_of(self, bucket: str, key: str) -> str | None:
        """The ETag of any object the credentials can read (an ``s3://`` input photo), None if missing.

        Raises:
            StorageError: the endpoint failed.
        """
        try:
            return str(self.client.head_object(Bucket=bucket, Key=key).get("ETag") or "") or None
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise translate(exc, bucket, f"inspect {key}") from exc
        except BotoCoreError as exc:
            raise translate(exc, bucket, f"inspect {key}") from exc

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

    def presign_object(self, bucket: str, key: str, expires: int = 3600) -> str:
        """A GET URL for any object the credentials can read (a product photo given as ``s3://bucket/key``),
        valid ``expires`` seconds; no request is made."""
        return self.client.generate_presigned_url(  # type: ignore[no-any-return]
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
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
