"""Batch-level decisions: stop (401/403), pause (402), cancel, resume and retry.

Stopping, pausing and cancelling are the engine's (:mod:`letzflow.engine.stopping`,
:mod:`letzflow.engine.cancel`); resuming and retrying send messages and stay on the wire.
"""

from __future__ import annotations

from letzai.errors import LetzAIError
from letzflow.engine import cancel, stopping
from tasks import messages, runtime
from tasks.pipelines import enqueue_item


def halt_batch(batch_id: str, state: str, exc: LetzAIError) -> bool:
    """:func:`letzflow.engine.stopping.halt_batch` with this process's collaborators."""
    return stopping.halt_batch(runtime.deps(), batch_id, state, exc)


def cancel_batch(batch_id: str, settle_seconds: float = 10.0) -> dict[str, int]:
    """:func:`letzflow.engine.cancel.cancel_batch` with this process's collaborators."""
    return cancel.cancel_batch(runtime.deps(), batch_id, settle_seconds)


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


def look_again(batch_id: str, step_id: int) -> bool:
    """An ``unconfirmed`` step's job has been named since (a late webhook to its POST's token): search
    for it once more, as ``letzflow retry`` would, nothing re-sent. The batch runs again unless it was
    cancelled; a paused or stopped one keeps the step for its resume. False: nothing was reopened."""
    ledger = runtime.ledger()
    batch = ledger.batch(batch_id)
    if batch is None or batch.state == "cancelled":
        return False
    if not ledger.claims.reopen_unconfirmed(batch_id, resubmit=False, step_id=step_id):
        return False
    if ledger.set_batch_state(batch_id, ("done", "finalizing", "running"), "running", ""):
        kick_batch(batch_id)
    return True


def kick_batch(batch_id: str) -> None:
    """Re-enqueue every queued item's remaining work and restart the feeder."""

    ledger = runtime.ledger()
    for item in ledger.items(batch_id, ("queued",)):
        assert item.id is not None
        enqueue_item(item.id)
    messages.send(messages.FEED_BATCH, batch_id)
