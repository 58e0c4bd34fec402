"""Deterministic storage keys (DESIGN.md): a retried copy overwrites the same key.

``{batch name}/{batch id}/{item id}/{NN}-{step}[-{k}].{ext}`` for media and
``{batch name}/{batch id}/manifest.json``; the store adds ``S3_PREFIX``.
"""

from __future__ import annotations

import mimetypes
import re
from urllib.parse import urlparse

from storage import lanes

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/quicktime": "mov",
}


def safe_segment(value: str) -> str:
    """A key segment from a user's id: unsafe characters become ``_``; never empty, never ``..``."""
    cleaned = _UNSAFE.sub("_", value).strip("._") or "_"
    return cleaned[:150]


def extension(content_type: str, url: str = "") -> str:
    """File extension from the Content-Type, else from the URL's name, else ``bin``."""
    ext = EXTENSIONS.get(content_type.lower())
    if ext:
        return ext
    guessed = mimetypes.guess_extension(content_type.lower()) if content_type else None
    if guessed:
        return guessed.lstrip(".")
    suffix = urlparse(url).path.rsplit(".", 1)
    if len(suffix) == 2 and 1 <= len(suffix[1]) <= 5 and suffix[1].isalnum():
        return suffix[1].lower()
    return "bin"


def batch_root(batch_name: str, batch_id: str) -> str:
    return f"{safe_segment(batch_name)}/{batch_id}"


def media_key(
    batch_name: str,
    batch_id: str,
    item_key: str,
    index: int,
    kind: str,
    ext: str,
    *,
    variant: int = 0,
    fanned_out: bool = False,
    branch: str = "",
    output: int = 0,
    outputs: int = 1,
) -> str:
    """The key of one stored output: ``NN`` is the 1-based step number; ``-k`` names, 1-based and joined by
    dots, the variant (when the item has several), the branch (the image of each earlier step that yielded
    several, see :mod:`storage.lanes`) and the output (when this step yields several)."""
    labels = []
    if fanned_out:
        labels.append(str(variant + 1))
    if branch:
        labels.append(lanes.label(branch))
    if outputs > 1:
        labels.append(str(output + 1))
    suffix = f"-{'.'.join(labels)}" if labels else ""
    return f"{batch_root(batch_name, batch_id)}/{safe_segment(item_key)}/{index + 1:02d}-{kind}{suffix}.{ext}"


def manifest_key(batch_name: str, batch_id: str) -> str:
    return f"{batch_root(batch_name, batch_id)}/manifest.json"
