"""Copying finished media from LetzAI to S3-compatible storage: streamed, verified, retried."""

from __future__ import annotations

import logging
from datetime import timedelta

from letzai.errors import LetzAIError
from letzai.media import open_media
from letzai.retry import Action, Call, classify
from storage.layout import extension, media_key
from storage.models import utcnow
from tasks import runtime
from tasks.outcomes import NEXT, Outcome, again

log = logging.getLogger(__name__)


def copy(step_id: int) -> Outcome:
    """Copy every output of a ready step to storage; then the step is done."""
    ledger = runtime.ledger()
    found = ledger.step_with_batch_item(step_id)
    if found is None or found[0].state not in ("ready", "copying"):
        return NEXT
    step, batch, item = found
    if step.state == "ready" and not ledger.transition(step_id, ("ready",), "copying"):
        return NEXT
    fanned_out = any(int(s.get("variants") or 1) > 1 for s in batch.steps)
    results = step.results or []
    stored = []
    try:
        for k, result in enumerate(results):
            reused = result.get("reuse_key")
            content_type = result["content_type"] if reused else None
            media = None if reused else open_media(result["url"])
            key = media_key(
                batch.name,
                batch.id,
                item.key,
                step.index,
                step.kind,
                extension(content_type or media.content_type, str(result.get("url") or reused)),  # type: ignore[union-attr]
                variant=step.variant,
                fanned_out=fanned_out,
                branch=step.branch,
                output=k,
                outputs=len(results),
            )
            if reused:
                # an earlier batch's verified output of the same content key: a server-side copy, no job
                obj = runtime.store().copy_object(reused, key, result["sha256"], result["size"], content_type)
            else:
                assert media is not None
                obj = runtime.store().put_stream(
                    key, media.chunks(), media.content_type, expected_size=media.length
                )
            stored.append(
                {
                    "key": obj.key,
                    "sha256": obj.sha256,
                    "size": obj.size,
                    "content_type": obj.content_type,
                    "image_id": result.get("image_id"),
                    "source_url": result["url"],
                    **(
                        {
                            "reused_from": {
                                "batch": result.get("origin_batch"),
                                "step": result.get("origin_step"),
                                "key": reused,
                                "letzai_id": result.get("origin_remote_id"),
                            }
                        }
                        if reused
                        else {}
                    ),
                }
            )
    except (LetzAIError, Exception) as exc:
        errors = step.errors_in_row + 1
        decision = classify(exc, Call.COPY, errors)
        if decision.action is Action.RETRY:
            ledger.update_step(
                step_id,
                errors_in_row=errors,
                error_class=type(exc).__name__,
                error_message=f"copy: {decision.reason}"[:2000],
                next_poll_at=utcnow() + timedelta(seconds=decision.delay + 60),
            )
            return again(decision.delay, f"copy failed, retrying: {decision.reason}")
        ledger.transition(
            step_id,
            ("copying",),
            "failed",
            error_class=type(exc).__name__,
            error_message=decision.reason[:2000],
            finished_at=utcnow(),
        )
        return NEXT
    ledger.transition(
        step_id,
        ("copying",),
        "done",
        outputs=stored,
        finished_at=utcnow(),
        errors_in_row=0,
        error_class=None,
        error_message=None,
        error_status=None,
        next_poll_at=None,
    )
    return NEXT
