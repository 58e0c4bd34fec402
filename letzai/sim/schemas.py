"""The accepted body of every LetzAI endpoint the simulator serves, and the checks across fields.

Each ``check_*`` function returns the validation messages of a body (an empty list when it is valid).
References to other objects (an image id that must exist) are checked by the routes, which know the jobs.
"""

from __future__ import annotations

from typing import Any

from letzai.sim.validation import (
    ASPECT_RATIOS,
    ASSET_EXTENSIONS,
    COMMON,
    IMAGE_MODES,
    MODEL_CLASSES,
    PRIVACY,
    Check,
    boolean,
    check_fields,
    check_nested,
    integer,
    list_of,
    model_name,
    nonempty,
    nonempty_or_null,
    number,
    obj,
    one_of,
    text,
    url,
    uuid_str,
)

EDIT_MODES = ("context", "skin", "in", "out")

IMAGE_RULES: dict[str, Check] = {
    "prompt": nonempty,
    "width": integer(480, 2160),
    "height": integer(480, 2160),
    "quality": integer(1, 6),
    "creativity": integer(1, 6),
    "hasWatermark": boolean,
    "systemVersion": one_of(2, 3),
    "mode": nonempty,
    "baseModel": nonempty,
    "hideFromUserProfile": boolean,
    **COMMON,
}

EDIT_RULES: dict[str, Check] = {
    "mode": one_of(*EDIT_MODES),
    "prompt": text,
    "originalImageCompletionId": uuid_str,
    "originalImageCompletionIds": list_of(uuid_str, 1, 9),
    "imageUrl": url,
    "inputImageUrls": list_of(url, 1, 9),
    "mask": nonempty,
    "settings": obj,
    "imageCompletionsCount": integer(1, 5),
    "width": integer(64, 4096),
    "height": integer(64, 4096),
    "hidePrompt": boolean,
    "baseModel": nonempty,
    **COMMON,
}

EDIT_SETTINGS: dict[str, dict[str, Check]] = {
    "context": {
        "resolution": one_of("1k", "2k", "4k"),
        "aspect_ratio": one_of(*ASPECT_RATIOS),
        "model": text,
    },
    "skin": {
        "face": boolean,
        "body": boolean,
        "eyes": boolean,
        "mouth": boolean,
        "nose": boolean,
        "intensity": integer(1, 5),
    },
    "in": {},
    "out": {"panControls": obj, "zoomSize": number(1, 4)},
}


def _url_or_urls(name: str, value: Any) -> str | None:
    return list_of(url, 1, 1)(name, value) if isinstance(value, list) else url(name, value)


def _resolution(name: str, value: Any) -> str | None:
    if isinstance(value, str) and value:
        return None
    return integer(1, 8192)(name, value)


UPSCALE_RULES: dict[str, Check] = {
    "imageId": uuid_str,
    "imageUrl": url,
    "imageUrls": _url_or_urls,
    "strength": integer(1, 5),
    "mode": nonempty,
    "size": number(2, 12),
    "prompt": text,
    **COMMON,
}

VIDEO_RULES: dict[str, Check] = {
    "prompt": nonempty,
    "originalImageCompletionId": uuid_str,
    "imageUrl": url,
    "imageUrls": list_of(url, 1, 2),
    "width": integer(64, 4096),
    "height": integer(64, 4096),
    "resolution": _resolution,
    "settings": obj,
    "hidePrompt": boolean,
    "baseModel": nonempty,
    **COMMON,
}

VIDEO_SETTINGS: dict[str, Check] = {
    "mode": nonempty,
    "withSound": boolean,
    "highQuality": boolean,
    "duration": integer(1, 20),
    "resolution": nonempty,
}

ASSET_RULES: dict[str, Check] = {
    "extension": one_of(*ASSET_EXTENSIONS, fold=True),
    "originalFilename": text,
    "mimeType": text,
    "fileSize": integer(0, 5 * 1024**3),
}

_MODEL_EDITABLE: dict[str, Check] = {
    "privacy": one_of(*PRIVACY),
    "type": nonempty_or_null,
    "description": text,
    "website": text,
    "settings": list_of(text, 0, 50),
}

MODEL_RULES: dict[str, Check] = {
    "name": model_name,
    "class": one_of(*MODEL_CLASSES, fold=True),
    "trainingDataUrls": list_of(url, 1, 50),
    "trainingMode": one_of("default", "slow"),
    **_MODEL_EDITABLE,
    **COMMON,
}

PRIVACY_RULES: dict[str, Check] = {"privacy": one_of(*PRIVACY)}
THUMBNAIL_RULES: dict[str, Check] = {"imageCompletionId": uuid_str}


def check_image(body: dict[str, Any]) -> list[str]:
    """``POST /images``."""
    messages = check_fields(body, IMAGE_RULES, ("prompt",))
    mode = body.get("mode")
    if isinstance(mode, str) and not body.get("baseModel") and mode not in IMAGE_MODES:
        messages.append(f"mode must be one of the following values: {', '.join(IMAGE_MODES)}")
    return messages


def check_edit(body: dict[str, Any]) -> list[str]:
    """``POST /image-edits``: the mode's required inputs and at least one source."""
    messages = check_fields(body, EDIT_RULES, ("mode",))
    mode = body.get("mode")
    if mode not in EDIT_MODES:
        return messages
    sources = ("originalImageCompletionId", "originalImageCompletionIds", "imageUrl", "inputImageUrls")
    if not any(body.get(s) for s in sources):
        messages.append("either originalImageCompletionId, imageUrl or inputImageUrls is required")
    if mode == "context" and not (isinstance(body.get("prompt"), str) and body["prompt"].strip()):
        messages.append("prompt should not be empty")
    if mode == "in" and not body.get("mask"):
        messages.append("mask should not be empty")
    if mode == "out" and not isinstance(body.get("settings"), dict):
        messages.append("settings should not be empty")
    messages += check_nested(body.get("settings"), EDIT_SETTINGS[mode])
    return messages


def check_upscale(body: dict[str, Any]) -> list[str]:
    """``POST /upscale``: one source (``imageId``, ``imageUrl`` or ``imageUrls``)."""
    messages = check_fields(body, UPSCALE_RULES)
    if not any(body.get(s) for s in ("imageId", "imageUrl", "imageUrls")):
        messages.append("either imageId or imageUrl is required")
    return messages


def check_video(body: dict[str, Any]) -> list[str]:
    """``POST /videos`` (no source at all means text-to-video)."""
    return check_fields(body, VIDEO_RULES, ("prompt",)) + check_nested(body.get("settings"), VIDEO_SETTINGS)


def check_asset(body: dict[str, Any]) -> list[str]:
    """``POST /user-assets`` (the extension may carry a leading dot)."""
    if isinstance(body.get("extension"), str):
        body = {**body, "extension": body["extension"].lstrip(".")}
    return check_fields(body, ASSET_RULES, ("extension",))


def check_model(body: dict[str, Any]) -> list[str]:
    """``POST /models``: ``trainingMode`` only for persons."""
    messages = check_fields(body, MODEL_RULES, ("name", "class", "trainingDataUrls"))
    model_class = body.get("class")
    if body.get("trainingMode") and isinstance(model_class, str) and model_class.lower() != "person":
        messages.append("trainingMode is only available for the person class")
    return messages


def check_model_patch(body: dict[str, Any]) -> list[str]:
    """``PATCH /models/{id}``."""
    return check_fields(body, _MODEL_EDITABLE)


def check_privacy(body: dict[str, Any]) -> list[str]:
    """``PUT /images/{id}/privacy`` and ``PUT /videos/{id}/privacy``."""
    return check_fields(body, PRIVACY_RULES, ("privacy",))


def check_thumbnail(body: dict[str, Any]) -> list[str]:
    """``PUT /models/{id}/thumbnail``."""
    return check_fields(body, THUMBNAIL_RULES, ("imageCompletionId",))
