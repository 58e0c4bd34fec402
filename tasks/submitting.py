"""Submitting a step's job exactly once: the gates before a POST (batch state, the previous step, the
in-flight slot and its lane, the rate, another batch rendering the same content), then the POST."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from storage import lanes
from storage.models import STEP_INFLIGHT, STEP_TERMINAL, Batch, Step, as_utc, utcnow
from tasks import runtime, waiters
from tasks.limits import lane_of
from tasks.look_timing import duration_key_of
from tasks.lost_answers import recover_submit
from tasks.outcomes import NEXT, Outcome, again, fail_step
from tasks.posting import new_hook, post

log = logging.getLogger(__name__)


def submit(step_id: int) -> Outcome:
    """Submit a step's job exactly once (or adopt the job an earlier, answer-lost POST created)."""
    ledger = runtime.ledger()
    found = ledger.step_with_batch_item(step_id)
    if found is None or found[0].state not in ("planned", "submitting"):
        return NEXT
    step, batch, item = found
    if batch.state != "running" and step.state == "planned":
        # a parked waiter may have been handed a slot while its batch paused, stopped or was cancelled
        runtime.inflight().release(step_id)
    if batch.state == "cancelled" and step.state == "planned":
        ledger.transition(step_id, ("planned",), "cancelled", finished_at=utcnow())
        return NEXT
    if batch.state != "running":
        return NEXT
    previous = ledger.previous_step(step)
    waiting = _after_previous(step, previous)
    if waiting is not None:
        return waiting
    if step.state == "submitting":
        return recover_submit(step, batch, item, previous)

    delay = runtime.inflight().acquire_or_wait(
        step_id, runtime.expected_duration(duration_key_of(step, batch)), lane_of(batch)
    )
    if delay:
        # parked (tasks.waiters) at most ``fallback(delay)`` s; the reconciler re-kicks it only past that
        due = utcnow() + timedelta(seconds=waiters.fallback(delay) + 30)
        if step.next_poll_at is None or as_utc(step.next_poll_at) < due - timedelta(seconds=20):
            # a write per ask would cost more than the ask itself
            ledger.update_step(step_id, next_poll_at=due + timedelta(seconds=20))
        return replace(again(delay, "waiting for an in-flight slot"), for_slot=True)
    wait = runtime.rate().take()
    if wait > 0:
        return again(wait, "rate limited locally")
    if step.content_key and batch.reuse and step.submit_attempts == 0:
        shared = _rendered_elsewhere(step, batch)
        if shared is not None:
            runtime.inflight().release(step_id)
            return shared
    token, hook_hash = new_hook()
    attempts = ledger.begin_submit_counted(step_id, batch.id, runtime.worker_name(), hook_hash)
    if attempts is None:
        _lost_the_submit(step_id)
        return NEXT
    step.state, step.submit_attempts = "submitting", attempts  # what the guarded update just wrote
    if not ledger.claim_job(batch.id):
        fail_step(
            step,
            ("submitting",),
            f"max_jobs={batch.max_jobs} reached: the batch may not create more LetzAI jobs",
        )
        return NEXT
    return post(step, batch, item, previous, token)


def _lost_the_submit(step_id: int) -> None:
    """Another run of this step (a duplicate message: a re-kick, a hand-over) took ``planned → submitting``
    first, or the batch stopped running. The slot is one per step, not per run: while the step is in flight
    it is the winner's, and freeing it would let one more job than the cap be in flight."""
    now = runtime.ledger().step(step_id)
    if now is None or now.state not in STEP_INFLIGHT:
        runtime.inflight().release(step_id)


def _after_previous(step: Step, previous: Step | None) -> Outcome | None:
    """None when the step may go on; else what to do while its previous step is not done (or skip it:
    the previous step ended without its image, or gave fewer images than this branch works on)."""
    ledger = runtime.ledger()
    assert step.id is not None
    if previous is None:
        return None
    if previous.state != "done":
        if previous.state in STEP_TERMINAL:
            ledger.transition(
                step.id,
                ("planned",),
                "skipped",
                finished_at=utcnow(),
                error_message=f"skipped: step {previous.index + 1} ({previous.kind}) ended {previous.state}",
            )
            return NEXT
        ledger.update_step(step.id, next_poll_at=utcnow() + timedelta(seconds=5))
        return again(5, "previous step not finished")
    if step.state == "planned" and step.branch != previous.branch:
        wanted = lanes.source_output(step.branch, previous.branch)
        got = len(previous.results or [])
        if wanted >= got:
            ledger.transition(
                step.id,
                ("planned",),
                "skipped",
                finished_at=utcnow(),
                error_message=f"skipped: step {previous.index + 1} ({previous.kind}) gave {got} image(s), "
                f"this branch works on image {wanted + 1}",
            )
            return NEXT
    return None


def _rendered_elsewhere(step: Step, batch: Batch) -> Outcome | None:
    """Another batch is rendering (or has rendered) this step's content: reuse it rather than pay again.

    None: this step renders it. The wait is bounded by the other step's own bounds (its deadline, its
    batch stopping): once it ends without outputs, or its batch is no longer running, this step takes over.
    """
    ledger = runtime.ledger()
    assert step.id is not None and step.content_key is not None
    holder_id = ledger.claims.claim_content(step.content_key, step.id)
    if holder_id == step.id:
        return None
    holder = ledger.step(holder_id)
    if holder is None or holder.batch_id == batch.id:
        return None  # the same content twice in one batch: each item renders its own
    if holder.state == "done" and holder.outputs:
        ledger.catalog.reuse([(step.id, holder)])
        log.info("step %s: reusing step %s of batch %s (same content)", step.id, holder.id, holder.batch_id)
        return NEXT
    other = ledger.batch(holder.batch_id)
    if other is None or other.state != "running":
        return None
    ledger.update_step(step.id, next_poll_at=utcnow() + timedelta(seconds=35))
    return again(3, f"batch {holder.batch_id} is rendering the same content")
