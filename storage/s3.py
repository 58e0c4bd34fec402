"""The boto3 side of the media store: the S3 client with its timeouts, the transfer settings, and the one
translation of botocore errors into :class:`~storage.media_base.StorageError`."""

from __future__ import annotations

from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from storage.media_base import PART_SIZE, StorageError

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
