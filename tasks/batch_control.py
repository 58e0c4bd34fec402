"""Batch-level decisions: stop (401/403), pause (402), cancel, resume and retry.

Stopping or pausing a batch and cancelling one step are the engine's (:mod:`letzflow.engine.stopping`);
cancelling, resuming and retrying a whole batch send messages and stay on the wire.
"""

from __future__ import annotations

import time

from letzai.errors import LetzAIError
from letzflow.engine import stopping
from storage.models import utcnow
from tasks import messages, runtime
from tasks.pipelines import enqueue_item


def halt_batch(batch_id: str, state: str, exc: LetzAIError) -> bool:
    """:func:`letzflow.engine.stopping.halt_batch` with this process's collaborators."""
    return stopping.halt_batch(runtime.deps(), batch_id, state, exc)


def cancel_batch(batch_id: str, settle_seconds: float = 10.0) -> dict[str, int]:
    """Cancel a batch: no new POSTs from now on, in-flight images interrupted, every open step cancelled.

    Steps caught mid-POST (``submitting``) are given ``settle_seconds`` to record their job, so that job
    is interrupted too.
    """
    ledger = runtime.ledger()
    ledger.set_batch_state(
        batch_id, ("running", "paused", "stopped", "creating"), "cancelled", "cancelled by the user"
    )
    runtime.inflight().forget_batch(batch_id)
    deadline = time.monotonic() + settle_seconds
    while ledger.steps_in(batch_id, ("submitting",)) and time.monotonic() < deadline:
        time.sleep(0.2)
    counts = {"interrupted": 0, "cancelled": 0}
    deps = runtime.deps()
    for step in ledger.steps_in(batch_id, ("planned", "submitting", "submitted", "running")):
        if step.state in ("submitted", "running") and step.remote_kind == "image":
            counts["interrupted"] += 1
        if stopping.cancel_step(deps, step):
            counts["cancelled"] += 1
    for item in ledger.items(batch_id, ("pending", "queued")):
        assert item.id is not None
        if not ledger.settle_item(item.id):
            ledger.set_item_state(
                item.id, ("pending",), "cancelled", error="cancelled by the user", finished_at=utcnow()
            )
    return counts


def resume_batch(batch_id: str) -> bool:
    """Resume a paused or stopped batch: re-kick its unfinished items; finished steps are reused."""
    ledger = runtime.ledger()
    if not ledger.set_batch_state(batch_id, ("paused", "stopped"), "running", ""):
        return False
    kick_batch(batch_id)
    return True


def retry_batch(batch_id: str, *, unconfirmed: bool = False) -> int:
    """Re-run failed items only: their failed steps are planned again, done steps are reused.

    ``unconfirmed`` steps (a lost answer whose job could not be identified) are searched for again in the
    list, never re-sent, unless ``unconfirmed=True``: then they are POSTed anew, which may pay twice.
    """
    ledger = runtime.ledger()
    count = ledger.claims.reopen_unconfirmed(batch_id, resubmit=unconfirmed)
    count += ledger.reset_failed(batch_id)
    if count:
        ledger.set_batch_state(
            batch_id, ("done", "finalizing", "paused", "stopped", "cancelled", "running"), "running", ""
        )
        kick_batch(batch_id)
    return count


def kick_batch(batch_id: str) -> None:
    """Re-enqueue every queued item's remaining work and restart the feeder."""

    ledger = runtime.ledger()
    for item in ledger.items(batch_id, ("queued",)):
        assert item.id is not None
        enqueue_item(item.id)
    messages.send(messages.FEED_BATCH, batch_id)
