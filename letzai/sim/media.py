"""Media the simulator serves: PNG images of a requested size (Pillow, cached) and one sample MP4."""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections import OrderedDict
from functools import lru_cache
from importlib import resources

from PIL import Image, ImageDraw

#: A small palette: a job's color comes from its id, so encoded images are shared through the cache.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (231, 76, 60),
    (46, 204, 113),
    (52, 152, 219),
    (155, 89, 182),
    (241, 196, 15),
    (26, 188, 156),
    (230, 126, 34),
    (52, 73, 94),
)

#: Smaller renditions listed in ``imageVersions`` beside ``original`` (only those smaller than it).
VERSION_SIDES = (1920, 640, 240, 96)

_CACHE_ENTRIES = 48
_cache: OrderedDict[tuple[int, int, tuple[int, int, int]], bytes] = OrderedDict()
_cache_lock = threading.Lock()


def color_for(job_id: str) -> tuple[int, int, int]:
    """The deterministic color of a job's images."""
    return PALETTE[hashlib.blake2b(job_id.encode(), digest_size=2).digest()[0] % len(PALETTE)]


def _render(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (width, height), color)
    draw = ImageDraw.Draw(image)
    band = max(1, min(width, height) // 8)
    shade = tuple(max(0, c - 60) for c in color)
    draw.rectangle((0, height - band, width, height), fill=shade)
    draw.rectangle((0, 0, band, height - band), fill=shade)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def png_bytes(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    """A PNG of ``width`` x ``height`` in ``color`` (LRU-cached: encoding large images is slow)."""
    key = (width, height, color)
    with _cache_lock:
        data = _cache.get(key)
        if data is not None:
            _cache.move_to_end(key)
            return data
    data = _render(width, height, color)
    with _cache_lock:
        _cache[key] = data
        while len(_cache) > _CACHE_ENTRIES:
            _cache.popitem(last=False)
    return data


def version_size(width: int, height: int, version: str) -> tuple[int, int] | None:
    """The pixel size of rendition ``version`` (``original`` or ``NxN``) of a width x height image."""
    if version == "original":
        return width, height
    try:
        box_w, box_h = (int(v) for v in version.lower().split("x", 1))
    except ValueError:
        return None
    if box_w <= 0 or box_h <= 0:
        return None
    scale = min(box_w / width, box_h / height, 1.0)
    return max(1, round(width * scale)), max(1, round(height * scale))


def image_versions(base_url: str, image_id: str, width: int, height: int) -> dict[str, str]:
    """The ``imageVersions`` object of a ready image: ``original`` plus smaller square boxes."""
    versions = {"original": f"{base_url}/media/{image_id}/original.png"}
    for side in VERSION_SIDES:
        if side < max(width, height):
            versions[f"{side}x{side}"] = f"{base_url}/media/{image_id}/{side}x{side}.png"
    return versions


@lru_cache(maxsize=1)
def sample_mp4() -> bytes:
    """The bundled ~1 s 64x64 H.264 MP4 that every simulated video serves."""
    return resources.files("letzai.sim").joinpath("sample.mp4").read_bytes()


@lru_cache(maxsize=len(PALETTE))
def preview_data_uri(color: tuple[int, int, int]) -> str:
    """A tiny base64 ``previewImage`` like the API's (a data URI of an 8x8 PNG)."""
    out = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def fit_size(megapixels: float, aspect: float) -> tuple[int, int]:
    """Width and height of about ``megapixels`` MP with ``aspect`` = width / height."""
    pixels = megapixels * 1_000_000
    width = round((pixels * aspect) ** 0.5)
    return max(1, width), max(1, round(width / aspect))
