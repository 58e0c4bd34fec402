"""From a spec step, an item and a source image to a LetzAI request body (API field names).

Step kinds and their endpoints:

| kind | endpoint | source |
|---|---|---|
| ``generate`` | ``/images`` | none |
| ``edit`` | ``/image-edits`` (any mode) | previous image, or the item's photo |
| ``skin_fix`` | ``/image-edits`` mode ``skin`` | previous image, or the item's photo |
| ``upscale`` | ``/upscale`` | previous image, or the item's photo |
| ``animate`` | ``/videos`` | previous image, the item's photo, or ``imageUrls`` (first/last frame) |
"""

from __future__ import annotations

import base64
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENDPOINTS = {"generate": "images", "edit": "image_edits", "skin_fix": "image_edits", "upscale": "upscale",
             "animate": "videos"}
REMOTE_KINDS = {"images": "image", "image_edits": "image_edit", "upscale": "upscale", "videos": "video"}
SKIN_SETTINGS = ("face", "body", "eyes", "mouth", "nose", "intensity")
#: letzflow's own step options, never sent to the API.
LOCAL_OPTIONS = ("variants", "skip_checks")


class TemplateError(ValueError):
    """A prompt template names a field the item does not have."""

    def __init__(self, name: str) -> None:
        super().__init__(f"the template uses {{{name}}} but the item has no field {name!r}")
        self.name = name


@dataclass
class StepSpec:
    """One pipeline step: ``kind`` and its parameters (API names), ``variants`` fan-out, disabled checks."""

    index: int
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    variants: int = 1
    skip_checks: frozenset[str] = frozenset()

    @property
    def endpoint(self) -> str:
        return ENDPOINTS[self.kind]

    @property
    def remote_kind(self) -> str:
        return REMOTE_KINDS[self.endpoint]


@dataclass
class ItemSpec:
    """One item: its id and every field from the spec or CSV row (prompt, image_url, columns …)."""

    id: str
    fields: dict[str, Any] = field(default_factory=dict)


class _Fields(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> Any:
        raise TemplateError(key)


def render(template: str, fields: dict[str, Any]) -> str:
    """Fill ``{column}`` placeholders from the item's fields; ``{{`` and ``}}`` are literal braces."""
    values = _Fields({k: "" if v is None else v for k, v in fields.items()})
    return string.Formatter().vformat(template, (), values)


def _prompt(step: StepSpec, item: ItemSpec) -> str | None:
    own = step.params.get("prompt")
    item_prompt = item.fields.get("prompt")
    fields = dict(item.fields)
    if item_prompt is not None:
        fields["prompt"] = render(str(item_prompt), item.fields)
    if own is not None:
        return render(str(own), fields)
    return fields.get("prompt")


def _templated(value: Any, fields: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return render(value, fields)
    if isinstance(value, list):
        return [_templated(v, fields) for v in value]
    return value


def _source(body: dict[str, Any], id_field: str, image_id: str | None, url: str | None) -> None:
    if any(k in body for k in ("originalImageCompletionId", "originalImageCompletionIds", "imageId", "imageUrl",
                               "inputImageUrls", "imageUrls")):
        return  # the step names its own source
    if image_id:
        body[id_field] = image_id
    elif url:
        body["imageUrl"] = url


def build_request(
    step: StepSpec, item: ItemSpec, source_image_id: str | None, source_url: str | None
) -> tuple[str, dict[str, Any]]:
    """(endpoint, body) to submit ``step`` for ``item`` on the given source image.

    Raises:
        TemplateError: a template names a missing field.
        OSError: a mask file cannot be read.
    """
    params = {k: v for k, v in step.params.items() if k not in LOCAL_OPTIONS}
    body: dict[str, Any] = {}
    prompt = _prompt(step, item)
    if step.kind == "generate":
        body = {**params, "prompt": prompt}
    elif step.kind in ("edit", "skin_fix"):
        body = dict(params)
        if step.kind == "skin_fix":
            settings = dict(body.pop("settings", None) or {})
            for key in SKIN_SETTINGS:
                if key in body:
                    settings[key] = body.pop(key)
            body = {**body, "mode": "skin", "settings": settings}
        body.setdefault("mode", "context")
        if prompt is not None and (body["mode"] != "skin" or "prompt" in params):
            body["prompt"] = prompt
        if "mask" in body and isinstance(body["mask"], str) and not body["mask"].startswith("data:"):
            body["mask"] = base64.b64encode(Path(body["mask"]).read_bytes()).decode()
        if "inputImageUrls" in body:
            body["inputImageUrls"] = _templated(body["inputImageUrls"], item.fields)
        _source(body, "originalImageCompletionId", source_image_id, source_url)
    elif step.kind == "upscale":
        body = dict(params)
        if "prompt" in params:
            body["prompt"] = prompt
        _source(body, "imageId", source_image_id, source_url)
    elif step.kind == "animate":
        body = {**params, "prompt": prompt}
        if "imageUrls" in body:
            body["imageUrls"] = _templated(body["imageUrls"], item.fields)
        _source(body, "originalImageCompletionId", source_image_id, source_url)
    else:
        raise ValueError(f"unknown step kind {step.kind!r}")
    return step.endpoint, {k: v for k, v in body.items() if v is not None}


def item_source_kind(value: str) -> str:
    """How an item's ``image_url`` is given: ``url`` (http/https), ``s3`` (s3://bucket/key) or ``path``."""
    lowered = value.lower()
    if lowered.startswith(("http://", "https://")):
        return "url"
    if lowered.startswith("s3://"):
        return "s3"
    return "path"
