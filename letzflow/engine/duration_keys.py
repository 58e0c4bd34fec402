"""Which jobs take about as long as each other: the key a learned duration is kept under.

A job's duration depends on its kind (image, image_edit, upscale, video), its mode or model (``turbo``
images, ``skin`` edits, ``veo31`` videos, a ``baseModel``) and its size (pixels and quality steps of an
image, the target megapixels of an upscale, a video's seconds and resolution). :func:`duration_key` turns
a step's spec into ``kind/mode/size``; a key nothing is learned for starts from its kind's figure
(:func:`fallback_keys`), and a kind nothing is learned for starts cold (:mod:`letzflow.engine.polling`).
"""

from __future__ import annotations

from typing import Any

#: Megapixel classes of an image's pixel count (upper bounds): 1024x1024 is "1mp", 1600x1600 "3mp".
_MEGAPIXEL_CLASSES = (0.6, 1.1, 2.2, 3.0, 4.7)


def _number(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _clean(value: Any) -> str:
    """A short, key-safe spelling of a spec value ("" for none)."""
    if value is None or value == "":
        return ""
    text = str(value).strip().lower()
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:40]


def _settings(params: dict[str, Any]) -> dict[str, Any]:
    value = params.get("settings")
    return value if isinstance(value, dict) else {}


def _image_size(params: dict[str, Any]) -> str:
    megapixels = _number(params.get("width"), 1600) * _number(params.get("height"), 1600) / 1e6
    size = next((f"{m:g}mp" for m in _MEGAPIXEL_CLASSES if megapixels <= m), "big")
    quality = params.get("quality")
    return f"{size}-q{_clean(quality)}" if quality is not None else size


def _mode(kind: str, spec_kind: str, params: dict[str, Any]) -> str:
    settings = _settings(params)
    if kind == "image_edit":
        mode = "skin" if spec_kind == "skin_fix" else _clean(params.get("mode")) or "context"
        model = _clean(params.get("baseModel") or settings.get("model"))
        return f"{mode}.{model}" if model else mode
    if kind == "video":
        return _clean(settings.get("mode")) or _clean(params.get("baseModel")) or "default"
    model = _clean(params.get("baseModel"))
    mode = _clean(params.get("mode")) or "default"
    return f"{model}.{mode}" if model else mode


def _size(kind: str, params: dict[str, Any]) -> str:
    settings = _settings(params)
    if kind == "image":
        return _image_size(params)
    if kind == "image_edit":
        return _clean(settings.get("resolution")) or "any"
    if kind == "upscale":
        return f"x{_clean(params.get('size')) or 'any'}"
    if kind == "video":
        seconds = _clean(settings.get("duration")) or "any"
        resolution = _clean(settings.get("resolution") or params.get("resolution"))
        quality = "-hq" if settings.get("highQuality") else ""
        return f"{seconds}s{'-' + resolution if resolution else ''}{quality}"
    return "any"


def duration_key(kind: str, spec_kind: str, params: dict[str, Any] | None) -> str:
    """``kind/mode/size`` of a step (``kind``: its remote kind; ``spec_kind``: the spec's step kind)."""
    values = dict(params or {})
    return f"{kind}/{_mode(kind, spec_kind, values)}/{_size(kind, values)}"


def kind_of(key: str) -> str:
    """The remote kind a key belongs to (a bare kind is its own)."""
    return key.split("/", 1)[0]


def fallback_keys(key: str) -> tuple[str, ...]:
    """Where a figure for ``key`` is looked for, in order: the key itself, then its kind."""
    kind = kind_of(key)
    return (key,) if key == kind else (key, kind)
