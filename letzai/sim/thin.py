"""Thin answers: objects that leave out fields, as a list (or a GET) of the real API may.

The contract says which fields a GET or list object carries is not guaranteed, and that a missing field
proves nothing. The knobs ``thin_list_fields`` and ``thin_get_fields`` name the fields left out; each name
stands for every place the object echoes that part of the request:

- ``createdAt``, ``prompt``, ``webhookUrl``, ``settings``, ``generationSettings``,
  ``originalImageCompletion`` (the source image object or id on edits, videos and edit result images):
  the top-level field of that name.
- ``source``: the echo of a source given by URL or id: ``imageId``, ``imageUrl``, ``imageUrls``,
  ``inputImageUrls``, ``originalImageCompletionId(s)`` (an upscale's ``imageId``/``imageUrl``; an edit's
  ``inputImageUrls``).
- ``mode``: the top-level ``mode`` and the nested ``generationSettings.mode`` (images),
  ``settings.mode`` (videos) and ``imageEdit.mode`` (edit result images).
- ``width``, ``height``: the top-level field and ``generationSettings.width``/``height``.

An edit's ``generatedImageCompletion`` (its result image, an echo of the same request) is thinned too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The recognised field names, and the paths each removes (missing ones are skipped).
FIELD_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "createdAt": (("createdAt",),),
    "prompt": (("prompt",),),
    "originalImageCompletion": (("originalImageCompletion",),),
    "source": (
        ("imageId",),
        ("imageUrl",),
        ("imageUrls",),
        ("inputImageUrls",),
        ("originalImageCompletionId",),
        ("originalImageCompletionIds",),
    ),
    "mode": (("mode",), ("generationSettings", "mode"), ("settings", "mode"), ("imageEdit", "mode")),
    "settings": (("settings",),),
    "webhookUrl": (("webhookUrl",),),
    "generationSettings": (("generationSettings",),),
    "width": (("width",), ("generationSettings", "width")),
    "height": (("height",), ("generationSettings", "height")),
}

#: The kinds of objects that can be thinned, and the nested objects thinned with them (as which kind).
KINDS: dict[str, dict[str, str]] = {
    "image": {},
    "image_edit": {"generatedImageCompletion": "image"},
    "upscale": {},
    "video": {},
}


def check_fields(names: Iterable[str]) -> list[str]:
    """``names`` as a list, each a recognised field name.

    Raises:
        ValueError: an unknown name (the message lists the allowed ones).
    """
    names = list(names)
    unknown = [name for name in names if name not in FIELD_PATHS]
    if unknown:
        allowed = ", ".join(FIELD_PATHS)
        raise ValueError(f"unknown thin field(s) {', '.join(unknown)}; allowed: {allowed}")
    return names


def thin(obj: dict[str, Any], fields: Iterable[str], kind: str) -> dict[str, Any]:
    """A copy of ``obj`` (an object of ``kind``) without ``fields``; ``obj`` itself is left untouched.

    Raises:
        ValueError: an unknown field name or kind.
    """
    if kind not in KINDS:
        raise ValueError(f"objects of kind {kind!r} are not thinned; kinds: {', '.join(KINDS)}")
    names = check_fields(fields)
    out = dict(obj)
    for name in names:
        for path in FIELD_PATHS[name]:
            _drop(out, path)
    for key, nested_kind in KINDS[kind].items():
        nested = out.get(key)
        if isinstance(nested, dict):
            out[key] = thin(nested, names, nested_kind)
    return out


def thinned(obj: dict[str, Any], fields: list[str], kind: str, roll: float, rate: float) -> dict[str, Any]:
    """``obj`` thinned when there are ``fields`` and the job's ``roll`` (in [0, 1)) is below ``rate``."""
    if not fields or roll >= rate:
        return obj
    return thin(obj, fields, kind)


def _drop(obj: dict[str, Any], path: tuple[str, ...]) -> None:
    """Remove ``path`` from ``obj``, copying each nested dict on the way (never mutates shared ones)."""
    head, rest = path[0], path[1:]
    if not rest:
        obj.pop(head, None)
        return
    inner = obj.get(head)
    if isinstance(inner, dict) and _has(inner, rest):
        copy = dict(inner)
        obj[head] = copy
        _drop(copy, rest)


def _has(obj: dict[str, Any], path: tuple[str, ...]) -> bool:
    inner: Any = obj
    for key in path:
        if not isinstance(inner, dict) or key not in inner:
            return False
        inner = inner[key]
    return True
