"""Content keys: what a planned step would produce, as a hash, so a changed catalog pays only for changes.

A step's key hashes its kind, the canonical request it would send (fields sorted, documented defaults
filled in, per-run noise such as ``webhookUrl`` and ``organizationId`` left out), the key of its input (the
previous step's key; for the first step, the item's photo by content) and its position (variant, branch).
Changing a prompt template, a field it uses, a parameter, the photo's bytes, or an earlier step changes the
key of that step and of every step after it, and nothing else. The same spec written two ways (YAML or
JSON, other key order, a default spelled out or left out) gives the same keys.

Pure: the photo's identity is computed by the caller (:func:`photo_identity` names the rules) and passed in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from letzflow.spec.requests import ItemSpec, StepSpec, build_request

#: Request fields that are per deployment or per run, not part of what is rendered.
NOISE = ("webhookUrl", "organizationId", "hidePrompt", "hideFromUserProfile")
#: The API's documented defaults (letzai-api.md): a value spelled out equals one left out.
DEFAULTS: dict[str, dict[str, Any]] = {
    "images": {"width": 1600, "height": 1600, "quality": 2, "creativity": 2, "hasWatermark": True},
    "upscale": {"strength": 1},
    "image_edits": {},
    "videos": {},
}
#: Stand-ins for the source a step works on (its input key carries what it really is).
INPUT_IMAGE = "<input-image>"
INPUT_URL = "<input-url>"
KEY_VERSION = "1"


def canonical_request(step: StepSpec, item: ItemSpec, *, has_input: bool, has_photo: bool) -> str:
    """The request ``step`` would send for ``item``, as canonical JSON (sorted, defaults, no noise).

    Raises:
        TemplateError: a template names a missing item field (the spec check reports it first).
        OSError: a mask file cannot be read.
    """
    image_id = INPUT_IMAGE if has_input else None
    url = INPUT_URL if has_photo and not has_input else None
    endpoint, body = build_request(step, item, image_id, url)
    body = {k: v for k, v in body.items() if k not in NOISE}
    for key, value in DEFAULTS.get(endpoint, {}).items():
        body.setdefault(key, value)
    doc = {"endpoint": endpoint, "body": body}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)


def step_key(kind: str, request: str, input_key: str, variant: int, branch: str) -> str:
    """One step's content key (hex sha256)."""
    raw = "\x00".join((KEY_VERSION, kind, request, input_key, str(variant), branch))
    return hashlib.sha256(raw.encode()).hexdigest()


def item_keys(
    steps: Sequence[StepSpec],
    item: ItemSpec,
    plan: Sequence[tuple[int, int, str]],
    photo: str | None,
    *,
    parent: Callable[[str], str],
) -> dict[tuple[int, int, str], str]:
    """The content key of each planned step of one item, by ``(variant, index, branch)``.

    ``plan`` is :func:`storage.lanes.plan` of the batch's steps; ``parent`` is :func:`storage.lanes.parent`
    (the step a branch splits from); ``photo`` the identity of the item's input photo (None: no photo).
    """
    keys: dict[tuple[int, int, str], str] = {}
    requests: dict[int, str] = {}
    for variant, index, branch in plan:
        step = steps[index]
        if index not in requests:
            requests[index] = canonical_request(step, item, has_input=index > 0, has_photo=photo is not None)
        if index == 0:
            input_key = f"photo:{photo}" if photo is not None else "none"
        else:
            input_key = keys.get((variant, index - 1, branch)) or keys[(variant, index - 1, parent(branch))]
        keys[(variant, index, branch)] = step_key(step.kind, requests[index], input_key, variant, branch)
    return keys


def photo_identity(kind: str, value: str, *, etag: str | None = None, sha256: str | None = None) -> str:
    """The identity of an input photo: a local file's or a fetched URL's sha256, else the ETag (or
    Last-Modified) the server gave; the caller reads them (this module does no I/O)."""
    if sha256:
        return f"sha256:{sha256}"
    if etag:
        return f"etag:{value}:{etag}"
    return f"{kind}:{value}"
