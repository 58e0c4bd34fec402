"""Media downloads (``/media/...``, no auth) and presigned-style uploads (``PUT /_uploads/...``)."""

from __future__ import annotations

import hashlib
import time

from letzai.sim.media import color_for, png_bytes, sample_mp4, version_size
from letzai.sim.replies import Reply
from letzai.sim.state import SimState

_NOT_FOUND = Reply(404, b"Not Found", "text/plain; charset=utf-8")


def _s3_error(status: int, code: str, message: str) -> Reply:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
    body += "</Error>"
    return Reply(status, body.encode(), "application/xml")


def _locate(sim: SimState, media_id: str) -> tuple[str, int, int] | None:
    """``(kind, width, height)`` of a ready job's media, or None (unknown or not ready)."""
    now = time.monotonic()
    with sim.lock:
        job = sim.jobs.get(media_id)
        if job is None:
            owner = sim.children.get(media_id)
            job = sim.jobs.get(owner[0]) if owner else None
        if job is None or job.state(now)[0] != "ready" or job.kind == "model":
            return None
        return ("video" if job.kind == "video" else "image"), job.width, job.height


def media(sim: SimState, parts: list[str]) -> Reply:
    """``GET /media/<id>/<version>.png|.mp4`` or ``GET /media/assets/<token>/<filename>``."""
    if len(parts) == 4 and parts[1] == "assets":
        with sim.lock:
            asset = sim.assets.get(parts[2])
        if asset is None or asset.data is None or asset.filename != parts[3]:
            return _s3_error(404, "NoSuchKey", "The specified key does not exist.")
        return Reply(200, asset.data, asset.content_type)
    if len(parts) != 3:
        return _NOT_FOUND
    found = _locate(sim, parts[1])
    if found is None:
        return _NOT_FOUND
    kind, width, height = found
    name, _, extension = parts[2].rpartition(".")
    if kind == "video":
        return Reply(200, sample_mp4(), "video/mp4") if extension == "mp4" else _NOT_FOUND
    size = version_size(width, height, name) if extension == "png" else None
    if size is None:
        return _NOT_FOUND
    return Reply(200, png_bytes(size[0], size[1], color_for(parts[1])), "image/png")


def upload(
    sim: SimState, parts: list[str], query: dict[str, str], headers: dict[str, str], data: bytes
) -> Reply:
    """``PUT /_uploads/<token>/<name>?X-Amz-Signature=…``: like a presigned S3 URL; refuses auth headers."""
    if "authorization" in headers:
        return _s3_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter should be specified",
        )
    with sim.lock:
        asset = sim.assets.get(parts[1]) if len(parts) == 3 else None
    if asset is None or asset.filename != parts[2]:
        return _s3_error(404, "NoSuchUpload", "The specified upload does not exist.")
    if query.get("X-Amz-Signature") != asset.signature:
        return _s3_error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match.")
    sim.store_asset(asset, data, headers.get("content-type"))
    etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
    return Reply(200, b"", "", {"ETag": f'"{etag}"'})
