"""Request-body validation in the API's manner: every documented field checked, any other field refused.

Messages follow the API's validation style (``property seed should not exist``, ``width must not be
greater than 2160``); a refused body is answered 400 with ``message`` as a list of them. Ranges are the
widest any official source allows (``letzai-api.md``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

Check = Callable[[str, Any], str | None]

_MODEL_NAME = re.compile(r"^[A-Za-z0-9_.]{1,50}$")
IMAGE_MODES = ("default", "cinematic", "sigma", "creative", "turbo", "1k", "2k", "4k", "hd")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
ASSET_EXTENSIONS = (
    *("jpg", "jpeg", "png", "gif", "webp"),
    *("mp4", "webm", "mov", "avi"),
    *("mp3", "wav", "ogg", "m4a", "aac", "flac"),
)
PRIVACY = ("private", "public", "licensed")
MODEL_CLASSES = ("person", "object", "style")


def integer(lo: float, hi: float) -> Check:
    """An integer (JSON number without fraction) within ``lo``..``hi``."""

    def check(name: str, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            return f"{name} must be an integer number"
        if value < lo:
            return f"{name} must not be less than {lo:g}"
        if value > hi:
            return f"{name} must not be greater than {hi:g}"
        return None

    return check


def number(lo: float, hi: float) -> Check:
    """Any JSON number within ``lo``..``hi``."""

    def check(name: str, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} must be a number conforming to the specified constraints"
        if not lo <= value <= hi:
            return f"{name} must be between {lo:g} and {hi:g}"
        return None

    return check


def text(name: str, value: Any) -> str | None:
    """A string (may be empty)."""
    return None if isinstance(value, str) else f"{name} must be a string"


def nonempty(name: str, value: Any) -> str | None:
    """A non-empty string."""
    if not isinstance(value, str):
        return f"{name} must be a string"
    return None if value.strip() else f"{name} should not be empty"


def boolean(name: str, value: Any) -> str | None:
    """A JSON boolean."""
    return None if isinstance(value, bool) else f"{name} must be a boolean value"


def obj(name: str, value: Any) -> str | None:
    """A JSON object."""
    return None if isinstance(value, dict) else f"{name} must be an object"


def one_of(*allowed: Any, fold: bool = False) -> Check:
    """One of ``allowed`` (case-insensitively with ``fold``)."""

    def check(name: str, value: Any) -> str | None:
        probe = value.lower() if fold and isinstance(value, str) else value
        if probe in allowed:
            return None
        return f"{name} must be one of the following values: {', '.join(str(a) for a in allowed)}"

    return check


def uuid_str(name: str, value: Any) -> str | None:
    """A UUID string."""
    if isinstance(value, str):
        try:
            uuid.UUID(value)
        except ValueError:
            pass
        else:
            return None
    return f"{name} must be a UUID"


def url(name: str, value: Any) -> str | None:
    """An http(s) URL string."""
    if isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8:
        return None
    return f"{name} must be a URL address"


def list_of(item: Check, lo: int, hi: int) -> Check:
    """A list of ``lo``..``hi`` entries, each passing ``item``."""

    def check(name: str, value: Any) -> str | None:
        if not isinstance(value, list):
            return f"{name} must be an array"
        if len(value) < lo:
            return f"{name} must contain at least {lo} elements"
        if len(value) > hi:
            return f"{name} must contain no more than {hi} elements"
        for entry in value:
            problem = item(f"each value in {name}", entry)
            if problem:
                return problem
        return None

    return check


def model_name(name: str, value: Any) -> str | None:
    """Letters, digits, ``_`` and ``.``; 1-50 characters."""
    if isinstance(value, str) and _MODEL_NAME.match(value):
        return None
    return f"{name} must contain only letters, digits, underscores and dots (max 50 characters)"


def nonempty_or_null(name: str, value: Any) -> str | None:
    """Null, or a non-empty string."""
    return None if value is None else nonempty(name, value)


COMMON: dict[str, Check] = {"organizationId": uuid_str, "webhookUrl": url}


def check_fields(body: dict[str, Any], rules: dict[str, Check], required: tuple[str, ...] = ()) -> list[str]:
    """Messages for unknown fields, missing required ones and values breaking their rule (none = valid)."""
    messages = [f"property {name} should not exist" for name in body if name not in rules]
    for name in required:
        if body.get(name) is None:
            messages.append(f"{name} should not be empty")
    for name, value in body.items():
        if name in rules and value is not None:
            problem = rules[name](name, value)
            if problem:
                messages.append(problem)
    return messages


def check_nested(settings: Any, rules: dict[str, Check], prefix: str = "settings") -> list[str]:
    """Messages for known keys of a nested object that break their rule (other keys pass through)."""
    if not isinstance(settings, dict):
        return []
    messages = []
    for key, rule in rules.items():
        if settings.get(key) is not None:
            problem = rule(f"{prefix}.{key}", settings[key])
            if problem:
                messages.append(problem)
    return messages
