"""Finding a job whose POST answer was lost: LetzAI has no idempotency key, so look in the list endpoint.

A POST that timed out, broke off or answered 5xx may still have created (and billed) the job. Before any
new POST the engine lists the account's newest jobs of that kind and adopts one that matches the request
(same prompt and mode, created since the first attempt) and that no other step has claimed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from storage.models import Step, as_utc
from tasks import runtime

log = logging.getLogger(__name__)

#: How far back (before the first POST attempt) a created job may be stamped; allows for clock skew.
CLOCK_SKEW = timedelta(seconds=120)
PAGES = 3
PAGE_SIZE = 50


def _created_at(obj: dict[str, Any]) -> datetime | None:
    raw = obj.get("createdAt")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None


def _source_id(obj: dict[str, Any]) -> str | None:
    source = obj.get("originalImageCompletion")
    if isinstance(source, dict):
        return str(source.get("id") or "") or None
    return obj.get("originalImageCompletionId") or obj.get("imageId")


def matches(endpoint: str, body: dict[str, Any], obj: dict[str, Any], since: datetime) -> bool:
    """Whether a listed object ``obj`` could be the job ``body`` created (at or after ``since``)."""
    if endpoint == "images" and obj.get("imageEdit"):
        return False  # an edit's result image, not a generation
    created = _created_at(obj)
    if created is not None:
        if created.tzinfo is None:
            created = created.replace(tzinfo=since.tzinfo)
        if created < since - CLOCK_SKEW:
            return False
    prompt = body.get("prompt")
    if prompt and obj.get("prompt") not in (None, prompt):
        return False
    if endpoint == "image_edits" and body.get("mode") and obj.get("mode") not in (None, body["mode"]):
        return False
    wanted_source = body.get("originalImageCompletionId") or body.get("imageId")
    have_source = _source_id(obj)
    return not (wanted_source and have_source and wanted_source != have_source)


def find_created_job(step: Step, endpoint: str, body: dict[str, Any], resource: Any) -> str | None:
    """The remote id of an unclaimed job matching ``body``, or None when the POST created nothing."""
    assert step.submitting_since is not None
    since = as_utc(step.submitting_since)
    ledger = runtime.ledger()
    for page in range(1, PAGES + 1):
        objects = resource.list(sortBy="createdAt", sortOrder="DESC", page=page, limit=PAGE_SIZE)
        candidates = [o for o in objects if o.get("id") and matches(endpoint, body, o, since)]
        claimed = ledger.claimed_remote_ids(step.remote_kind, [str(o["id"]) for o in candidates])
        for obj in candidates:
            if str(obj["id"]) not in claimed:
                log.info(
                    "step %s: adopted job %s created by an earlier POST whose answer was lost",
                    step.id,
                    obj["id"],
                )
                return str(obj["id"])
        if len(objects) < PAGE_SIZE:
            break
        oldest = min((c for c in (_created_at(o) for o in objects) if c), default=None)
        if oldest is not None and oldest.replace(tzinfo=oldest.tzinfo or since.tzinfo) < since - CLOCK_SKEW:
            break
    return None
