"""Batch-level decisions: stop (401/403), pause (402), cancel, resume and retry."""

from __future__ import annotations

import logging
import time

from letzai.errors import InsufficientCredits, LetzAIError
from storage.models import STEP_TERMINAL, Step, utcnow
from tasks import messages, runtime
from tasks.pipelines import enqueue_item

log = logging.getLogger(__name__)


def halt_message(state: str, batch_id: str, exc: LetzAIError) -> str:
    reason = getattr(exc, "api_message", exc.message)
    if state == "paused" or isinstance(exc, InsufficientCredits):
        return (
            f"paused: LetzAI is out of credits (HTTP 402: {reason}). Top up the account or organization, "
            f"then run `letzflow resume {batch_id}`; nothing done so far is paid again."
        )
    return (
        f"stopped: LetzAI refused the request (HTTP {getattr(exc, 'status', '?')}: {reason}). Check "
        f"LETZAI_API_KEY (and LETZAI_ORGANIZATION_ID), then run `letzflow resume {batch_id}`."
    )


def halt_batch(batch_id: str, state: str, exc: LetzAIError) -> bool:
    """Stop (401/403) or pause (402) a running batch once; later calls change nothing."""
    changed = runtime.ledger().set_batch_state(
        batch_id, ("running",), state, halt_message(state, batch_id, exc)
    )
    if changed:
        log.warning("batch %s %s", batch_id, halt_message(state, batch_id, exc))
        runtime.inflight().forget_batch(batch_id)  # its waiters leave the line: other batches get the slots
    return changed


def cancel_step(step: Step) -> bool:
    """Cancel one step: interrupt its image job if one is in flight, release its slot."""

    if step.state in STEP_TERMINAL:
        return False
    if step.state in ("submitted", "running"):
        interrupt_job(step)
    changed = runtime.ledger().transition(
        step.id,  # type: ignore[arg-type]
        (step.state,),
        "cancelled",
        finished_at=utcnow(),
        next_poll_at=None,
        error_message="cancelled by the user",
    )
    runtime.inflight().release(step.id)  # type: ignore[arg-type]
    return changed


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
    for step in ledger.steps_in(batch_id, ("planned", "submitting", "submitted", "running")):
        if step.state in ("submitted", "running") and step.remote_kind == "image":
            counts["interrupted"] += 1
        if cancel_step(step):
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


def interrupt_job(step: Step) -> None:
    """Best effort: only images can be interrupted through the public API."""
    if step.remote_kind != "image" or not step.remote_id:
        return
    try:
        runtime.client().images.interrupt(step.remote_id)
    except LetzAIError as exc:
        log.warning("step %s: interrupting job %s failed: %s", step.id, step.remote_id, exc.message)
