"""From a spec step, an item and a source image to a LetzAI request body (API field names).

| kind | endpoint | source |
|---|---|---|
| ``generate`` | ``/images`` | none |
| ``edit`` | ``/image-edits`` (mode ``context`` unless given) | previous image, or the item's photo |
| ``skin_fix`` | ``/image-edits`` mode ``skin`` | previous image, or the item's photo |
| ``upscale`` | ``/upscale`` | previous image, or the item's photo |
| ``animate`` | ``/videos`` | the step's ``imageUrls`` (first/last frame), else as above |

Prompts and URL fields are templates over the item's fields (``{color}``; ``{{`` and ``}}`` are literal
braces). A step's own ``prompt`` replaces the item's and may use ``{prompt}``.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from letzflow.errors import LetzflowError

ENDPOINTS: dict[str, str] = {
    "generate": "images",
    "edit": "image_edits",
    "skin_fix": "image_edits",
    "upscale": "upscale",
    "animate": "videos",
}
REMOTE_KINDS: dict[str, str] = {
    "images": "image",
    "image_edits": "image_edit",
    "upscale": "upscale",
    "videos": "video",
}
#: Step kinds that work on an existing image (the item's photo when they come first).
NEEDS_SOURCE = ("edit", "skin_fix", "upscale")
#: ``skin_fix`` parameters that may be given flat and belong in ``settings``.
SKIN_SETTINGS = ("face", "body", "eyes", "mouth", "nose", "intensity")
#: ``TemplateError.where`` when the item's own prompt is the template at fault.
ITEM_PROMPT = "item prompt"
#: Step fields that are templates over the item's fields (besides ``prompt``).
TEMPLATED = ("imageUrl", "imageUrls", "inputImageUrls")
#: Source fields a step may set itself, per endpoint; the previous image is then not added.
OWN_SOURCE: dict[str, tuple[str, ...]] = {
    "images": (),
    "image_edits": ("originalImageCompletionId", "originalImageCompletionIds", "imageUrl"),
    "upscale": ("imageId", "imageUrl", "imageUrls"),
    "videos": ("originalImageCompletionId", "imageUrl", "imageUrls"),
}
_SOURCE_ID_FIELD = {
    "image_edits": "originalImageCompletionId",
    "upscale": "imageId",
    "videos": "originalImageCompletionId",
}
_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]+)\}")


class TemplateError(LetzflowError, ValueError):
    """A template names a field the item does not have.

    Attributes:
        name: the missing item field.
        where: the step field holding the template (``prompt``, ``imageUrls``, …).
    """

    def __init__(self, name: str, where: str = "prompt") -> None:
        owner = "the item's prompt" if where == ITEM_PROMPT else f"the step's {where}"
        super().__init__(f"{owner} uses {{{name}}} but the item has no field {name!r}")
        self.name = name
        self.where = where


@dataclass
class StepSpec:
    """One pipeline step: its kind, API parameters, ``variants`` fan-out and the checks it turns off."""

    index: int
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    variants: int = 1
    skip_checks: frozenset[str] = frozenset()

    @property
    def endpoint(self) -> str:
        """``images``, ``image_edits``, ``upscale`` or ``videos``."""
        return ENDPOINTS[self.kind]

    @property
    def remote_kind(self) -> str:
        """The :mod:`letzai.responses` kind to poll: ``image``, ``image_edit``, ``upscale`` or ``video``."""
        return REMOTE_KINDS[self.endpoint]

    @property
    def completions(self) -> int:
        """Images one job of this step yields: ``imageCompletionsCount`` of an edit (the API's defaults: 3
        for inpainting and outpainting, else 1); every other kind yields one."""
        if self.kind != "edit" or self.params.get("mode") == "skin":
            return 1
        count = self.params.get("imageCompletionsCount")
        if count is None:
            return 3 if self.params.get("mode") in ("in", "out") else 1
        return int(count) if isinstance(count, int) and not isinstance(count, bool) and count > 0 else 1

    def to_row(self) -> dict[str, Any]:
        """The step as the batch row stores it (``Batch.steps``): what workers rebuild it from."""
        return {
            "index": self.index,
            "kind": self.kind,
            "params": self.params,
            "variants": self.variants,
            "completions": self.completions,
            "skip_checks": sorted(self.skip_checks),
            "remote_kind": self.remote_kind,
            "endpoint": self.endpoint,
        }

    @classmethod
    def from_row(cls, raw: dict[str, Any]) -> StepSpec:
        """The step a batch row stored (:meth:`to_row`)."""
        return cls(
            index=raw["index"],
            kind=raw["kind"],
            params=dict(raw.get("params") or {}),
            variants=int(raw.get("variants") or 1),
            skip_checks=frozenset(raw.get("skip_checks") or ()),
        )

    def names_own_source(self) -> bool:
        """Whether the step's parameters give its source image themselves (e.g. ``imageUrls``)."""
        return any(k in self.params for k in OWN_SOURCE[self.endpoint]) or "inputImageUrls" in self.params


@dataclass
class ItemSpec:
    """One item: its id and every field from the spec or CSV row (``prompt``, ``image_url``, columns …)."""

    id: str
    fields: dict[str, Any] = field(default_factory=dict)


def render(template: str, fields: dict[str, Any], where: str = "prompt") -> str:
    """Fill ``{name}`` placeholders from ``fields``; ``{{``/``}}`` are literal braces.

    Raises:
        TemplateError: a placeholder names a field that is not there.
    """

    def fill(match: re.Match[str]) -> str:
        token = match.group(0)
        if token in ("{{", "}}"):
            return token[0]
        name = match.group(1).strip()
        if name not in fields:
            raise TemplateError(name, where)
        value = fields[name]
        return "" if value is None else str(value)

    return _PLACEHOLDER.sub(fill, template)


def step_prompt(step: StepSpec, item: ItemSpec) -> str | None:
    """The prompt ``step`` sends for ``item``: the step's own template, else the item's (both rendered)."""
    item_prompt = item.fields.get("prompt")
    rendered = (
        None
        if item_prompt is None or item_prompt == ""
        else render(str(item_prompt), item.fields, ITEM_PROMPT)
    )
    own = step.params.get("prompt")
    if own is None:
        return rendered
    return render(str(own), item.fields if rendered is None else {**item.fields, "prompt": rendered})


def _templated(value: Any, fields: dict[str, Any], where: str) -> Any:
    if isinstance(value, str):
        return render(value, fields, where)
    if isinstance(value, list):
        return [_templated(v, fields, where) for v in value]
    return value


@functools.lru_cache(maxsize=32)
def _mask_base64(path: str, mtime_ns: int, size: int) -> str:
    return base64.b64encode(Path(path).read_bytes()).decode("ascii")


def read_mask(path: str) -> str:
    """A mask file as base64 (cached while the file is unchanged).

    Raises:
        OSError: the file cannot be read.
    """
    stat = Path(path).stat()
    return _mask_base64(path, stat.st_mtime_ns, stat.st_size)


def _skin_settings(params: dict[str, Any]) -> dict[str, Any]:
    settings = dict(params.pop("settings", None) or {})
    for key in SKIN_SETTINGS:
        if key in params:
            settings[key] = params.pop(key)
    return settings


def build_request(
    step: StepSpec, item: ItemSpec, source_image_id: str | None, source_url: str | None
) -> tuple[str, dict[str, Any]]:
    """(endpoint, body) to submit ``step`` for ``item`` on the given source image.

    ``source_image_id`` is a LetzAI image id (preferred), ``source_url`` a public URL; both may be None
    (``generate``, text-to-video). A ``mask`` path is read and base64-encoded here.

    Raises:
        TemplateError: a template names a missing item field.
        OSError: a mask file cannot be read.
    """
    endpoint = step.endpoint
    body = dict(step.params)
    body.pop("prompt", None)
    for name in TEMPLATED:
        if name in body:
            body[name] = _templated(body[name], item.fields, name)
    if step.kind == "skin_fix":
        settings = _skin_settings(body)
        body = {**body, "mode": "skin", "settings": settings}
    elif step.kind == "edit":
        body.setdefault("mode", "context")
    prompt = step_prompt(step, item)
    takes_prompt = endpoint in ("images", "videos") or (endpoint == "image_edits" and body["mode"] != "skin")
    if takes_prompt or "prompt" in step.params:
        body["prompt"] = prompt
    mask = body.get("mask")
    if isinstance(mask, str) and mask and not mask.startswith("data:"):
        body["mask"] = read_mask(mask)
    if endpoint != "images" and not any(k in body for k in OWN_SOURCE[endpoint]):
        if source_image_id:
            body[_SOURCE_ID_FIELD[endpoint]] = source_image_id
        elif source_url:
            body["imageUrl"] = source_url
    return endpoint, {k: v for k, v in body.items() if v is not None}


def item_source_kind(value: str) -> str:
    """How an item's ``image_url`` is given: ``url`` (http/https), ``s3`` (s3://bucket/key) or ``path``."""
    lowered = value.strip().lower()
    if lowered.startswith(("http://", "https://")):
        return "url"
    if lowered.startswith("s3://"):
        return "s3"
    return "path"
