"""Copying a finished step's media from LetzAI to S3-compatible storage: streamed, verified, retried.

:func:`copy` moves a ``ready`` step to ``copying``, stores every output under its deterministic key (a
retry overwrites what a failed attempt left), and ends the step ``done`` with what was stored, or
``failed`` once the copy policy (``letzai.retry``, ``Call.COPY``) gives up. The wire's
``letzflow.copy_outputs`` runs it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from letzai.retry import Action, Call, classify
from letzflow.engine.deps import Deps
from letzflow.engine.outcome import NEXT, Outcome, again
from storage.layout import extension, media_key
from storage.media_base import StoredObject
from storage.models import Batch, Item, Step

#: Remote kinds whose media (a few MB: images and edits) the look that saw the job done may copy itself,
#: saving a task execution and a message; upscales and videos are copied by the media queue's workers, so
#: a large copy never holds up looks.
COPY_IN_LOOK = ("image", "image_edit")


def copy(deps: Deps, step_id: int) -> Outcome:
    """Copy every output of a ready step to storage; then the step is done."""
    found = deps.ledger.step_with_batch_item(step_id)
    if found is None or found[0].state not in ("ready", "copying"):
        return NEXT
    step, batch, item = found
    if step.state == "ready" and not deps.ledger.transition(step_id, ("ready",), "copying"):
        return NEXT
    results = step.results or []
    try:
        stored = [
            _copy_output(deps, batch, item, step, k, result, len(results)) for k, result in enumerate(results)
        ]
    except Exception as exc:  # a download, an upload or a verification: the copy policy decides
        return _copy_failed(deps, step, exc)
    deps.ledger.transition(
        step_id,
        ("copying",),
        "done",
        outputs=stored,
        finished_at=deps.now(),
        errors_in_row=0,
        error_class=None,
        error_message=None,
        error_status=None,
        next_poll_at=None,
    )
    return NEXT


def _copy_output(
    deps: Deps, batch: Batch, item: Item, step: Step, k: int, result: dict[str, Any], outputs: int
) -> dict[str, Any]:
    """Store output ``k`` of ``outputs``: streamed from its URL, or (an earlier batch's verified output of
    the same content key, ``reuse_key``) a server-side copy, no job. Answers the output's manifest entry."""
    reused = result.get("reuse_key")
    content_type = result["content_type"] if reused else None
    media = None if reused else deps.open_media(result["url"])
    key = media_key(
        batch.name,
        batch.id,
        item.key,
        step.index,
        step.kind,
        extension(content_type or media.content_type, str(result.get("url") or reused)),  # type: ignore[union-attr]
        variant=step.variant,
        fanned_out=any(int(s.get("variants") or 1) > 1 for s in batch.steps),
        branch=step.branch,
        output=k,
        outputs=outputs,
    )
    obj: StoredObject
    if reused:
        obj = deps.store.copy_object(reused, key, result["sha256"], result["size"], result["content_type"])
    else:
        assert media is not None
        obj = deps.store.put_stream(key, media.chunks(), media.content_type, expected_size=media.length)
    entry: dict[str, Any] = {
        "key": obj.key,
        "sha256": obj.sha256,
        "size": obj.size,
        "content_type": obj.content_type,
        "image_id": result.get("image_id"),
        "source_url": result["url"],
    }
    if reused:
        entry["reused_from"] = {
            "batch": result.get("origin_batch"),
            "step": result.get("origin_step"),
            "key": reused,
            "letzai_id": result.get("origin_remote_id"),
        }
    return entry


def _copy_failed(deps: Deps, step: Step, exc: Exception) -> Outcome:
    """Copy again after the policy's backoff (the step stays ``copying``), or fail the step."""
    errors = step.errors_in_row + 1
    decision = classify(exc, Call.COPY, errors)
    if decision.action is Action.RETRY:
        deps.ledger.update_step(
            step.id,  # type: ignore[arg-type]
            while_in=("copying",),  # another run of this copy may have stored everything meanwhile
            errors_in_row=errors,
            error_class=type(exc).__name__,
            error_message=f"copy: {decision.reason}"[:2000],
            next_poll_at=deps.now() + timedelta(seconds=decision.delay + 60),
        )
        return again(decision.delay, f"copy failed, retrying: {decision.reason}")
    deps.ledger.transition(
        step.id,  # type: ignore[arg-type]
        ("copying",),
        "failed",
        error_class=type(exc).__name__,
        error_message=decision.reason[:2000],
        finished_at=deps.now(),
    )
    return NEXT
