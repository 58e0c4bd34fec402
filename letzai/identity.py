"""Telling which listed LetzAI job a request created: positive identification only.

LetzAI has no idempotency key. When a create POST's answer is lost, the job it may have created (and
billed) can only be found in the list endpoint, and a listed object is that request's job only when every
field that tells the request apart from other requests is **present** in the object and equal. A missing
field proves nothing (``letzai-api.md``, "Finding the job of a lost answer").

:func:`judge` compares one object with one request and answers a :class:`Verdict`:

- ``MATCH``: every identifying field the request carries is shown by the object, equal, and the object was
  created after the request was first sent (``createdAt`` present and in the window);
- ``DIFFERENT``: some field the object shows contradicts the request (or it is older than the request);
- ``UNKNOWN``: nothing contradicts, but a field the request carries is missing: it may or may not be it.

:func:`could_share_job` is the guard against two open requests the list cannot tell apart: two requests
are twins when an object created by one could be judged a ``MATCH`` for the other under any echo.

Everything here is pure: no I/O, no clock (``since`` is given), tested from tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from letzai.webhook_tokens import same_hash, token_of

#: How far before the first POST a created job may be stamped (clock skew between us and the API).
CLOCK_SKEW = timedelta(seconds=120)


class Verdict(Enum):
    MATCH = "match"
    DIFFERENT = "different"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Field:
    """One request field and where an API object echoes it.

    Attributes:
        name: the request field.
        keys: other request fields that say the same (``imageUrl`` and ``imageUrls`` both give the source).
        paths: where objects may show it, dotted (``originalImageCompletion.id``); the first present wins.
        required: identifying: when the request carries it, the object must show it (else ``UNKNOWN``).
            A field that is not required is compared only when the object shows it.
        empty_when_absent: when the request does not carry it, an object showing a non-empty value is
            another request's job (a prompt, a source, a webhook URL). Fields the API fills with defaults
            (``settings``, ``mode``) are not.
        subset: compare mappings key by key: the request's keys must be shown and equal (the API adds
            defaults to ``settings``).
    """

    name: str
    paths: tuple[str, ...]
    keys: tuple[str, ...] = ()
    required: bool = True
    empty_when_absent: bool = False
    subset: bool = False


def _f(name: str, *paths: str, keys: tuple[str, ...] = (), **kw: Any) -> Field:
    return Field(name, paths or (name,), keys, **kw)


_WEBHOOK = _f("webhookUrl", empty_when_absent=True)
_SOURCE_ID = ("originalImageCompletion.id", "originalImageCompletion", "originalImageCompletionId")

#: The identifying fields of each create endpoint's request, and where objects echo them.
FIELDS: dict[str, tuple[Field, ...]] = {
    "images": (
        _f("prompt", empty_when_absent=True),
        _WEBHOOK,
        _f("width", "width", "generationSettings.width", required=False),
        _f("height", "height", "generationSettings.height", required=False),
        _f("quality", "quality", "generationSettings.quality", required=False),
        _f("creativity", "creativity", "generationSettings.creativity", required=False),
        _f("mode", "mode", "generationSettings.mode", required=False),
        _f("hasWatermark", required=False),
        _f("systemVersion", required=False),
        _f("baseModel", required=False),
    ),
    "image_edits": (
        _f("mode"),
        _f("prompt", empty_when_absent=True),
        _f("originalImageCompletionId", *_SOURCE_ID, empty_when_absent=True),
        _f("imageUrl", "imageUrl", "inputImageUrls", keys=("inputImageUrls",), empty_when_absent=True),
        _f("settings", subset=True),
        _WEBHOOK,
        _f("imageCompletionsCount", required=False),
        _f("baseModel", required=False),
    ),
    "upscale": (
        _f("imageId", "imageId", *_SOURCE_ID, "source.id", empty_when_absent=True),
        _f("imageUrl", "imageUrl", "imageUrls", "source.url", keys=("imageUrls",), empty_when_absent=True),
        _f("prompt", empty_when_absent=True),
        _WEBHOOK,
        _f("strength", required=False),
        _f("size", required=False),
        _f("mode", required=False),
    ),
    "videos": (
        _f("prompt", empty_when_absent=True),
        _f("originalImageCompletionId", *_SOURCE_ID, empty_when_absent=True),
        _f("imageUrl", "imageUrl", "imageUrls", keys=("imageUrls",), empty_when_absent=True),
        _f("settings", subset=True),
        _WEBHOOK,
        _f("baseModel", required=False),
    ),
}


@dataclass(frozen=True)
class Judgement:
    """``exact``: a ``MATCH`` by the POST's own webhook token, which no other request can share."""

    verdict: Verdict
    why: str = ""
    exact: bool = False


def _lookup(obj: Mapping[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, Mapping):
            # a source shown as a bare id string answers "originalImageCompletion.id" too
            return value if part == "id" and isinstance(value, str) else None
        value = value.get(part)
    return value


def _shown(obj: Mapping[str, Any], field: Field) -> Any:
    for path in field.paths:
        value = _lookup(obj, path)
        if not _empty(value):
            return value
    return None


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _same(wanted: Any, shown: Any, subset: bool = False) -> bool:
    if subset and isinstance(wanted, Mapping) and isinstance(shown, Mapping):
        return all(k in shown and _same(v, shown[k]) for k, v in wanted.items())
    if isinstance(wanted, bool) or isinstance(shown, bool):
        return wanted is shown or wanted == shown
    if isinstance(wanted, int | float) and isinstance(shown, int | float | str):
        try:
            return float(wanted) == float(shown)
        except ValueError:
            return False
    if isinstance(wanted, str) and isinstance(shown, list | tuple):
        return list(shown) == [wanted]  # one source URL echoed as a one-element list
    if isinstance(wanted, list | tuple) and isinstance(shown, str):
        return list(wanted) == [shown]
    if isinstance(wanted, list | tuple) and isinstance(shown, list | tuple):
        return [str(v) for v in wanted] == [str(v) for v in shown]
    return bool(wanted == shown) or str(wanted) == str(shown)


def _sent(body: Mapping[str, Any], field: Field) -> Any:
    for key in (field.name, *field.keys):
        if not _empty(body.get(key)):
            return body[key]
    return None


def created_at(obj: Mapping[str, Any]) -> datetime | None:
    """The object's ``createdAt`` as an aware datetime, or None when absent or unreadable."""
    raw = obj.get("createdAt")
    if not isinstance(raw, str):
        return None
    try:
        stamp = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def judge(
    endpoint: str,
    body: Mapping[str, Any],
    obj: Mapping[str, Any],
    since: datetime,
    *,
    hook_hash: str | None = None,
) -> Judgement:
    """Whether ``obj`` (a listed or fetched object) is the job ``body`` created, first sent at ``since``.

    ``hook_hash``: the POST carried a webhook URL whose token hashes to this (the token itself is not
    kept, so ``body`` does not carry it). An object that shows a ``webhookUrl`` is then judged by it
    alone, before any other rule: its token's hash equal is an exact ``MATCH``, anything else is another
    POST's job. An object that shows none is judged by the other fields.
    """
    if endpoint == "images" and obj.get("imageEdit"):
        return Judgement(Verdict.DIFFERENT, "an edit's result image")
    fields = FIELDS[endpoint]
    if hook_hash:
        shown_hook = _shown(obj, _WEBHOOK)
        if shown_hook is not None:
            token = token_of(shown_hook)
            if token is not None and same_hash(hook_hash, token):
                return Judgement(Verdict.MATCH, "identified by its webhook token", exact=True)
            return Judgement(Verdict.DIFFERENT, "another POST's webhook URL")
        fields = tuple(f for f in fields if f is not _WEBHOOK)
    missing: list[str] = []
    for field in fields:
        wanted, shown = _sent(body, field), _shown(obj, field)
        if _empty(wanted):
            if field.empty_when_absent and not _empty(shown):
                return Judgement(Verdict.DIFFERENT, f"{field.name} shown but not sent")
            continue
        if shown is None:
            if field.required:
                missing.append(field.name)
            continue
        if not _same(wanted, shown, field.subset):
            return Judgement(Verdict.DIFFERENT, f"{field.name} differs")
    created = created_at(obj)
    if created is None:
        missing.append("createdAt")
    elif created < since - CLOCK_SKEW:
        return Judgement(Verdict.DIFFERENT, "created before the request was sent")
    if missing:
        return Judgement(Verdict.UNKNOWN, "lacks " + ", ".join(missing))
    return Judgement(Verdict.MATCH)


def could_share_job(endpoint: str, ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> bool:
    """Whether a job created by request ``theirs`` could be judged a MATCH for request ``ours``.

    It could unless a required field that ``ours`` carries is carried by ``theirs`` with another value
    (or not at all, for fields the API does not fill in itself): then every echo of it tells them apart.
    """
    for field in FIELDS[endpoint]:
        wanted = _sent(ours, field)
        if not field.required or _empty(wanted):
            continue
        other = _sent(theirs, field)
        if _empty(other):
            if field.empty_when_absent:
                return False
            continue  # the API may fill a default that equals ours
        if not _same(wanted, other, field.subset):
            return False
    return True


def identifying(endpoint: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a request body that identifies it (what :func:`judge` compares)."""
    return {k: body[k] for f in FIELDS[endpoint] for k in (f.name, *f.keys) if not _empty(body.get(k))}


def missing_fields(judgements: Sequence[Judgement]) -> str:
    """A short account of why unknown objects could not be told apart ("lacks prompt, createdAt")."""
    reasons = sorted({j.why for j in judgements if j.verdict is Verdict.UNKNOWN})
    return "; ".join(reasons[:3])
