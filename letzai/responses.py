"""Response models: the few things the engine needs from any LetzAI job object.

Objects tolerate unknown fields (the API grows) and never keep ``previewImage`` (large base64).
The status vocabularies and the media-URL rules are those of ``letzai-api.md``; each lives in one table
here so an answer to one of its open questions changes one line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Literal

log = logging.getLogger(__name__)

Kind = Literal["image", "image_edit", "upscale", "video", "model"]
Phase = Literal["working", "success", "failure", "unknown"]

STATUSES: dict[str, dict[str, frozenset[str]]] = {
    "image": {
        "working": frozenset({"new", "generating", "in progress", "in_progress"}),
        "success": frozenset({"ready"}),
        "failure": frozenset({"failed", "interrupted", "not_allowed", "hidden"}),
    },
    "image_edit": {
        "working": frozenset({"new", "generating", "in progress", "in_progress"}),
        "success": frozenset({"ready", "saved"}),
        "failure": frozenset({"failed", "interrupted"}),
    },
    "upscale": {
        "working": frozenset({"new", "generating", "in progress", "in_progress"}),
        "success": frozenset({"ready"}),
        "failure": frozenset({"failed"}),
    },
    "video": {
        "working": frozenset({"new", "generating", "in progress", "in_progress"}),
        "success": frozenset({"ready", "saved"}),
        "failure": frozenset({"failed", "interrupted"}),
    },
    "model": {
        "working": frozenset({"new", "pending", "training", "finished"}),
        "success": frozenset({"available"}),
        "failure": frozenset({"failed"}),
    },
}

_logged_unknown: set[tuple[str, str]] = set()


def classify_status(kind: Kind, status: str | None) -> Phase:
    """Map a raw status to working / success / failure / unknown (logged once per value)."""
    value = (status or "").strip().lower()
    for phase in ("working", "success", "failure"):
        if value in STATUSES[kind][phase]:
            return phase  # type: ignore[return-value]
    if (kind, value) not in _logged_unknown:
        _logged_unknown.add((kind, value))
        log.warning("unknown %s status %r: polling on until the deadline", kind, status)
    return "unknown"


def _largest_version(versions: dict[str, Any]) -> str | None:
    if not isinstance(versions, dict):
        return None
    original = versions.get("original")
    if isinstance(original, str) and original:
        return original

    def area(key: str) -> int:
        try:
            w, h = key.lower().split("x", 1)
            return int(w) * int(h)
        except ValueError:
            return 0

    candidates = [(area(k), v) for k, v in versions.items() if isinstance(v, str) and v]
    return max(candidates)[1] if candidates else None


def image_url(obj: dict[str, Any]) -> str | None:
    """An image object's media: ``imageVersions.original``, else the largest other version."""
    return _largest_version(obj.get("imageVersions") or {})


def video_url(obj: dict[str, Any]) -> str | None:
    """A video's media, trying the disputed fields in order: ``videoVersions.original``,
    ``videoPaths.mp4`` (or any other ``videoPaths`` key), the first entry of a ``videoVersions`` array."""
    versions = obj.get("videoVersions")
    if isinstance(versions, dict):
        url = versions.get("original") or next(
            (v for v in versions.values() if isinstance(v, str) and v), None
        )
        if url:
            return str(url)
    paths = obj.get("videoPaths")
    if isinstance(paths, dict):
        url = paths.get("mp4") or next((v for v in paths.values() if isinstance(v, str) and v), None)
        if url:
            return str(url)
    if isinstance(versions, list) and versions:
        first = versions[0]
        if isinstance(first, str):
            return first
        if isinstance(first, dict):
            return (
                first.get("url")
                or first.get("original")
                or next((v for v in first.values() if isinstance(v, str) and v.startswith("http")), None)
            )
    return None


@dataclass
class Output:
    """One finished media file of a job: its URL and the LetzAI image id it belongs to (if any)."""

    url: str
    image_id: str | None = None


@dataclass
class Job:
    """A LetzAI job as the engine sees it.

    Attributes:
        kind: image, image_edit, upscale, video or model.
        id: the remote id.
        status: the raw status string.
        phase: working / success / failure / unknown.
        progress: 0-100.
        reason: failure reason (``statusDetail`` and/or ``progressMessage``).
        outputs: media of a finished job (empty until ready).
        choices: ids listed in ``imageCompletionChoices`` (edits), to fetch with ``GET /images/{id}``.
        keys: the top-level keys of the raw object (for error messages; never the values).
    """

    kind: Kind
    id: str
    status: str
    phase: Phase
    progress: float = 0.0
    reason: str = ""
    outputs: list[Output] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Success **and** media present: the only definition of finished (a model has no media)."""
        return self.phase == "success" and (bool(self.outputs) or self.kind == "model")

    @property
    def failed(self) -> bool:
        return self.phase == "failure"


def _reason(obj: dict[str, Any]) -> str:
    parts = []
    for key in ("statusDetail", "progressMessage"):
        value = obj.get(key)
        if value and str(value) not in parts:
            parts.append(str(value))
    return " / ".join(parts)


def parse_job(kind: Kind, obj: dict[str, Any]) -> Job:
    """Build a :class:`Job` from a raw API object of ``kind``."""
    status = str(obj.get("status") or "")
    job = Job(
        kind=kind,
        id=str(obj.get("id") or ""),
        status=status,
        phase=classify_status(kind, status),
        progress=float(obj.get("progress") or 0),
        reason=_reason(obj),
        keys=sorted(k for k in obj if k != "previewImage"),
    )
    if kind == "image_edit":
        generated = obj.get("generatedImageCompletion")
        if isinstance(generated, dict):
            url = image_url(generated)
            if url:
                job.outputs.append(Output(url, str(generated.get("id") or "") or None))
            if not job.reason:
                job.reason = _reason(generated)
        for choice in obj.get("imageCompletionChoices") or []:
            known = {o.image_id for o in job.outputs} | set(job.choices)
            if isinstance(choice, dict):
                url = image_url(choice)
                cid = str(choice.get("id") or "") or None
                if url:
                    if all(o.url != url for o in job.outputs):
                        job.outputs.append(Output(url, cid))
                elif cid and cid not in known:
                    job.choices.append(cid)
            elif isinstance(choice, str) and choice and choice not in known:
                job.choices.append(choice)
    elif kind == "video":
        url = video_url(obj)
        if url:
            job.outputs.append(Output(url, None))
    elif kind in ("image", "upscale"):
        url = image_url(obj)
        if url:
            # An upscale result is not an image completion the API takes by id: later steps use its URL.
            job.outputs.append(Output(url, job.id if kind == "image" else None))
    if job.phase != "success":
        job.outputs = [] if job.phase == "failure" else job.outputs
    return job


def unwrap_list(body: Any) -> list[dict[str, Any]]:
    """List endpoints answer a bare array or a ``{data: [...], pagination}`` envelope: accept both."""
    if body is None:
        return []
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        for key in ("data", "items", "results"):
            if isinstance(body.get(key), list):
                return list(body[key])
    return []
