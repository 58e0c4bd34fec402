"""The documented request limits of every LetzAI endpoint, as one table, and the checks that apply it.

Ranges are the widest any official source in ``letzai-api.md`` allows (e.g. image quality 1-6 from the
guide, not the docs' 1-5). Fields not in :data:`KNOWN_FIELDS` are passed through unchecked, since the API
grows. Each rule can be switched off by naming its field in ``skip`` (dotted for nested settings, e.g.
``settings.intensity``; naming ``settings`` switches off every ``settings.*`` rule).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from letzai.errors import ValidationError
from letzai.rules import (
    Absent,
    AnyOf,
    IsBool,
    IsDict,
    IsNumber,
    IsString,
    ListOf,
    NeedsTrue,
    OneOf,
    Pattern,
    Range,
    Required,
    Rule,
    Url,
)

EDIT_MODES = ("context", "skin", "in", "out")
EDIT_SOURCES = ("originalImageCompletionId", "originalImageCompletionIds", "imageUrl", "inputImageUrls")
LEGACY_IMAGE_MODES = ("default", "cinematic", "sigma", "creative", "turbo")
#: Resolution tiers seen as ``mode`` values; with a ``baseModel`` any tier name is passed through.
IMAGE_TIERS = ("1k", "2k", "4k", "hd")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21")
ASSET_EXTENSIONS = (
    "jpg",
    "jpeg",
    "png",
    "gif",
    "webp",
    "mp4",
    "webm",
    "mov",
    "avi",
    "mp3",
    "wav",
    "ogg",
    "m4a",
    "aac",
    "flac",
)
MODEL_NAME = r"[A-Za-z0-9_.]{1,50}"

_COMMON: tuple[Rule, ...] = (IsString("organizationId"), Url("webhookUrl"))


def _no_base_model(body: Mapping[str, Any]) -> bool:
    return body.get("baseModel") in (None, "")


def _not_person(body: Mapping[str, Any]) -> bool:
    return str(body.get("class") or "").lower() != "person"


def _mode(value: str) -> Any:
    return lambda body: body.get("mode") == value


_EDIT_CONTEXT, _EDIT_SKIN, _EDIT_IN, _EDIT_OUT = (_mode(m) for m in EDIT_MODES)

RULES: dict[str, tuple[Rule, ...]] = {
    "images": (
        Required("prompt"),
        IsString("prompt"),
        Range("width", 480, 2160),
        Range("height", 480, 2160),
        Range("quality", 1, 6),
        Range("creativity", 1, 6),
        OneOf("systemVersion", (2, 3)),
        IsBool("hasWatermark"),
        IsBool("hideFromUserProfile"),
        IsString("mode"),
        OneOf("mode", LEGACY_IMAGE_MODES + IMAGE_TIERS, when=_no_base_model),
        IsString("baseModel"),
        *_COMMON,
    ),
    "image_edits": (
        Required("mode"),
        OneOf("mode", EDIT_MODES),
        AnyOf(EDIT_SOURCES),
        IsString("originalImageCompletionId"),
        ListOf("originalImageCompletionIds", 0, None),
        Url("imageUrl"),
        ListOf("inputImageUrls", 0, 9),
        IsString("prompt"),
        Required("prompt", when=_EDIT_CONTEXT),
        Range("imageCompletionsCount", 1, 5),
        Range("width", 1, None),
        Range("height", 1, None),
        IsBool("hidePrompt"),
        IsString("baseModel"),
        IsDict("settings"),
        OneOf("settings.resolution", ("1k", "2k", "4k"), when=_EDIT_CONTEXT),
        OneOf("settings.aspect_ratio", ASPECT_RATIOS, when=_EDIT_CONTEXT),
        IsString("settings.model", when=_EDIT_CONTEXT),
        *(IsBool(f"settings.{part}", when=_EDIT_SKIN) for part in ("face", "body", "eyes", "mouth", "nose")),
        Range("settings.intensity", 1, 5, when=_EDIT_SKIN),
        NeedsTrue("settings.mouth", "settings.face", default=True, when=_EDIT_SKIN),
        NeedsTrue("settings.nose", "settings.face", default=True, when=_EDIT_SKIN),
        Required("mask", when=_EDIT_IN),
        IsString("mask"),
        Required("settings.panControls", when=_EDIT_OUT),
        IsDict("settings.panControls", when=_EDIT_OUT),
        *(IsBool(f"settings.panControls.{side}", when=_EDIT_OUT) for side in ("up", "right", "down", "left")),
        IsNumber("settings.zoomSize", 1.0, None, when=_EDIT_OUT),
        *_COMMON,
    ),
    "upscale": (
        AnyOf(("imageId", "imageUrl", "imageUrls")),
        IsString("imageId"),
        Url("imageUrl"),
        ListOf("imageUrls", 0, None),
        Range("strength", 1, 5),
        IsNumber("size", 2, 12),
        IsString("mode"),
        IsString("prompt"),
        *_COMMON,
    ),
    "videos": (
        Required("prompt"),
        IsString("prompt"),
        IsString("originalImageCompletionId"),
        Url("imageUrl"),
        ListOf("imageUrls", 0, 2),
        Range("width", 1, None),
        Range("height", 1, None),
        IsDict("settings"),
        IsString("settings.mode"),
        IsBool("settings.withSound"),
        IsBool("settings.highQuality"),
        IsNumber("settings.duration", 1, None),
        OneOf("settings.resolution", ("720p", "1080p", "4k")),
        IsBool("hidePrompt"),
        IsString("baseModel"),
        *_COMMON,
    ),
    "models": (
        Required("name"),
        Pattern("name", MODEL_NAME, "letters, digits, '_' and '.', at most 50 characters"),
        Required("class"),
        OneOf("class", ("person", "object", "style"), ignore_case=True),
        Required("trainingDataUrls"),
        ListOf("trainingDataUrls", 1, 50),
        OneOf("trainingMode", ("default", "slow")),
        Absent("trainingMode", "only for the person class", when=_not_person),
        Required("type", when=lambda body: "type" in body),
        IsString("type"),
        IsString("privacy"),
        IsString("description"),
        IsString("website"),
        ListOf("settings", 0, None),
        *_COMMON,
    ),
    "user_assets": (
        Required("extension"),
        OneOf("extension", ASSET_EXTENSIONS, ignore_case=True),
        IsString("originalFilename"),
        IsString("mimeType"),
        Range("fileSize", 0, None),
    ),
}

_EXTRA_FIELDS: dict[str, frozenset[str]] = {
    "image_edits": frozenset({"settings"}),
    "videos": frozenset({"resolution"}),
}

#: Documented top-level request fields per endpoint.
KNOWN_FIELDS: dict[str, frozenset[str]] = {
    endpoint: frozenset(f for rule in rules for f in rule.fields if "." not in f)
    | _EXTRA_FIELDS.get(endpoint, frozenset())
    for endpoint, rules in RULES.items()
}


def _skipped(rule: Rule, skip: frozenset[str]) -> bool:
    for name in rule.fields:
        parts = name.split(".")
        if any(".".join(parts[: i + 1]) in skip for i in range(len(parts))):
            return True
    return False


def validate_request(
    endpoint: str, body: Mapping[str, Any], skip: Iterable[str] = ()
) -> list[ValidationError]:
    """Every documented-limit problem of a request ``body`` for ``endpoint``; never raises.

    ``skip`` names fields (dotted for nested ones) whose checks are off. An unknown endpoint is itself
    reported as one problem.
    """
    rules = RULES.get(endpoint)
    if rules is None:
        return [ValidationError("endpoint", endpoint, f"one of {', '.join(sorted(RULES))}")]
    skipped = frozenset(skip)
    problems: list[ValidationError] = []
    seen: set[str] = set()
    for rule in rules:
        if _skipped(rule, skipped) or (rule.when is not None and not rule.when(body)):
            continue
        problem = rule.check(body)
        if problem is not None and problem.field not in seen:
            seen.add(problem.field)
            problems.append(problem)
    return problems


def check_request(endpoint: str, body: Mapping[str, Any], skip: Iterable[str] = ()) -> None:
    """Raise the first problem :func:`validate_request` finds.

    Raises:
        ValidationError: naming the field, its value and what is allowed.
    """
    problems = validate_request(endpoint, body, skip)
    if problems:
        raise problems[0]
