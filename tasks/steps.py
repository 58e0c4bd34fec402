"""Polling one submitted LetzAI job: look once, then done, failed, or look again when it is likely done.

Each step function loads its step by id, does at most one remote call, records what happened with a
guarded ledger update, and answers an :class:`~tasks.outcomes.Outcome`. None of them sleeps; calling one
twice for the same step (a redelivered message) changes nothing. Submitting is :mod:`tasks.submitting`.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from letzai.errors import LetzAIError
from letzai.responses import Output
from letzai.retry import Action, Call, classify
from storage.models import Step, as_utc, utcnow
from tasks import runtime
from tasks.batch_control import cancel_step, halt_batch, interrupt_job
from tasks.inputs import resource
from tasks.look_timing import duration_key_of, learn_from_look, next_look_delay
from tasks.outcomes import NEXT, Outcome, again, ceiling, deadline_of, fail_step

log = logging.getLogger(__name__)


def poll(step_id: int) -> Outcome:
    """Look at a submitted job once; decide whether it is done, failed, or when to look again."""
    ledger = runtime.ledger()
    found = ledger.step_with_batch(step_id)
    if found is None or found[0].state not in ("submitted", "running") or not found[0].remote_id:
        return NEXT
    step, batch = found
    assert step.remote_id is not None
    if batch.state == "cancelled":
        cancel_step(step)
        return NEXT
    now = utcnow()
    # a job that ended before its deadline was looked at keeps its result (or its own failure reason)
    until_deadline = (as_utc(step.deadline_at) - now).total_seconds() if step.deadline_at else None
    wait = runtime.rate().take()
    if wait > 0:
        return again(wait, "rate limited locally")
    try:
        job = resource(_endpoint(step)).get(step.remote_id)
    except LetzAIError as exc:
        past_deadline = until_deadline is not None and until_deadline < 0
        decision = classify(exc, Call.POLL, step.errors_in_row + 1, past_deadline=past_deadline)
        match decision.action:
            case Action.RETRY:
                ledger.update_step(
                    step_id,
                    errors_in_row=step.errors_in_row + (1 if decision.counts else 0),
                    next_poll_at=now + timedelta(seconds=decision.delay + 30),
                )
                return again(decision.delay, decision.reason)
            case Action.INTERRUPT:
                return _past_deadline(step)
            case Action.STOP_BATCH | Action.PAUSE_BATCH:
                halt_batch(batch.id, "stopped" if decision.action is Action.STOP_BATCH else "paused", exc)
                return NEXT
            case _:
                fail_step(step, ("submitted", "running"), decision.reason, exc)
                return NEXT
    if job.done or (job.phase == "success" and job.choices):
        outputs = [{"url": o.url, "image_id": o.image_id} for o in job.outputs] + _choices(
            job.choices, job.outputs
        )
        if outputs:
            if ledger.polled(
                step_id,
                ("submitted", "running"),
                "ready",
                results=outputs,
                progress=100.0,
                errors_in_row=0,
                next_poll_at=now + timedelta(seconds=60),
            ):
                runtime.inflight().release(step_id)
                learn_from_look(step, batch, now, done=True, progress=100.0)
            return NEXT
    if job.failed or (job.phase == "success" and step.remote_kind == "video"):
        ledger.bump_polls(step_id, errors_in_row=0, progress=job.progress)
    if job.failed:
        reason = job.reason or "no reason given"
        fail_step(step, ("submitted", "running"), f"LetzAI job {job.status}: {reason}")
        return NEXT
    if job.phase == "success" and step.remote_kind == "video":
        fail_step(
            step,
            ("submitted", "running"),
            f"video is {job.status} but has no media URL; keys: {', '.join(job.keys)}",
        )
        return NEXT
    if until_deadline is not None and until_deadline < 0:
        return _past_deadline(step)
    key = duration_key_of(step, batch)
    learn_from_look(step, batch, now, done=False, progress=job.progress, key=key)
    elapsed = (now - as_utc(step.submitted_at or now)).total_seconds()
    delay = next_look_delay(step, batch, elapsed, job.progress, ceiling(until_deadline), key=key)
    ledger.polled(
        step_id,
        ("submitted", "running"),
        "running",
        errors_in_row=0,
        progress=job.progress,
        next_poll_at=now + timedelta(seconds=delay + 30),
    )
    runtime.inflight().refresh(step_id, release_at=now.timestamp() + delay)
    return Outcome("again", max(0.05, delay), f"{job.status} {job.progress:.0f}%", looked=True)


def _past_deadline(step: Step) -> Outcome:
    """The job is still running (or could not be seen) past its deadline: interrupt it and fail the step."""
    interrupt_job(step)
    fail_step(
        step,
        ("submitted", "running"),
        f"deadline passed ({deadline_of(step).total_seconds():.0f} s): job interrupted",
    )
    return NEXT


def _choices(choice_ids: list[str], have: list[Output]) -> list[dict[str, Any]]:
    """Outputs for edit choices listed by id only (each read with ``GET /images/{id}``)."""
    known = {o.image_id for o in have}
    extra: list[dict[str, Any]] = []
    for cid in choice_ids:
        if cid in known:
            continue
        image = runtime.client().images.get(cid)
        if image.done:
            extra.extend({"url": o.url, "image_id": cid} for o in image.outputs[:1])
    return extra


def _endpoint(step: Step) -> str:
    return {"image": "images", "image_edit": "image_edits", "upscale": "upscale", "video": "videos"}[
        step.remote_kind
    ]
