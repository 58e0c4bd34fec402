"""Polling one submitted LetzAI job: look once, then done, failed, or look again when it is likely done.

:func:`poll` loads its step by id, makes at most one remote call for the job (and one per edit choice
listed by id only), records what it saw with a guarded ledger update, and answers an
:class:`~letzflow.engine.outcome.Outcome`. It never sleeps; calling it twice for the same step (a
redelivered message) changes nothing. The wire's ``letzflow.poll_step`` runs it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from letzai.client import LetzAIClient
from letzai.errors import LetzAIError
from letzai.responses import Job, Output
from letzai.retry import Action, Call, classify
from letzflow.engine.bounds import ceiling, deadline_of
from letzflow.engine.copy import COPY_IN_LOOK
from letzflow.engine.deps import Deps
from letzflow.engine.look_timing import duration_key_of, learn_from_look, next_look_delay
from letzflow.engine.outcome import NEXT, Outcome, again
from letzflow.engine.resources import ENDPOINT_OF_KIND, resource_of
from letzflow.engine.stopping import cancel_step, fail_step, halt_batch, interrupt_job
from storage.models import Batch, Step, as_utc

#: The states of a step whose job is out there (a look moves ``submitted`` to ``running``).
LOOKED_AT = ("submitted", "running")


def poll(deps: Deps, step_id: int) -> Outcome:
    """Look at a submitted job once; decide whether it is done, failed, or when to look again."""
    found = deps.ledger.step_with_batch(step_id)
    if found is None or found[0].state not in LOOKED_AT or not found[0].remote_id:
        return NEXT
    step, batch = found
    assert step.remote_id is not None
    if batch.state == "cancelled":
        cancel_step(deps, step)
        return NEXT
    now = deps.now()
    # a job that ended before its deadline was looked at keeps its result (or its own failure reason)
    until_deadline = (as_utc(step.deadline_at) - now).total_seconds() if step.deadline_at else None
    wait = deps.rate.take()
    if wait > 0:
        return again(wait, "rate limited locally")
    try:
        job = resource_of(deps.client, ENDPOINT_OF_KIND[step.remote_kind]).get(step.remote_id)
    except LetzAIError as exc:
        return _not_seen(deps, step, batch, exc, now, until_deadline)
    return _seen(deps, step, batch, job, now, until_deadline)


def _not_seen(
    deps: Deps, step: Step, batch: Batch, exc: LetzAIError, now: datetime, until_deadline: float | None
) -> Outcome:
    """The GET failed: look again later, interrupt past the deadline, halt the batch, or fail the step."""
    past_deadline = until_deadline is not None and until_deadline < 0
    decision = classify(exc, Call.POLL, step.errors_in_row + 1, past_deadline=past_deadline)
    match decision.action:
        case Action.RETRY:
            deps.ledger.update_step(
                step.id,  # type: ignore[arg-type]
                while_in=LOOKED_AT,  # not over a copy's own count, should another look have seen it done
                errors_in_row=step.errors_in_row + (1 if decision.counts else 0),
                next_poll_at=now + timedelta(seconds=decision.delay + 30),
            )
            return again(decision.delay, decision.reason)
        case Action.INTERRUPT:
            return _past_deadline(deps, step)
        case Action.STOP_BATCH | Action.PAUSE_BATCH:
            halt_batch(deps, batch.id, "stopped" if decision.action is Action.STOP_BATCH else "paused", exc)
            return NEXT
        case _:
            fail_step(deps, step, LOOKED_AT, decision.reason, exc)
            return NEXT


def _seen(
    deps: Deps, step: Step, batch: Batch, job: Job, now: datetime, until_deadline: float | None
) -> Outcome:
    """The GET answered: store the outputs of a finished job, fail a failed one, or plan the next look."""
    if job.done or (job.phase == "success" and job.choices):
        outputs = [{"url": o.url, "image_id": o.image_id} for o in job.outputs]
        outputs += _choices(deps.client, job.choices, job.outputs)
        if outputs:
            first = _finished(deps, step, batch, outputs, now)
            return Outcome("next", copy_here=first and step.remote_kind in COPY_IN_LOOK)
    # success without media: a video fails here; a job of any other kind is looked at again (to its deadline)
    video_without_media = job.phase == "success" and step.remote_kind == "video"
    if job.failed or video_without_media:
        deps.ledger.bump_polls(step.id, errors_in_row=0, progress=job.progress)  # type: ignore[arg-type]
    if job.failed:
        reason = job.reason or "no reason given"
        fail_step(deps, step, LOOKED_AT, f"LetzAI job {job.status}: {reason}")
        return NEXT
    if video_without_media:
        keys = ", ".join(job.keys)
        fail_step(deps, step, LOOKED_AT, f"video is {job.status} but has no media URL; keys: {keys}")
        return NEXT
    if until_deadline is not None and until_deadline < 0:
        return _past_deadline(deps, step)
    return _still_working(deps, step, batch, job, now, until_deadline)


def _finished(deps: Deps, step: Step, batch: Batch, outputs: list[dict[str, Any]], now: datetime) -> bool:
    """Record a finished job's outputs (once: the guarded update wins for one caller), free its slot; True
    for the caller that won."""
    if not deps.ledger.polled(
        step.id,  # type: ignore[arg-type]
        LOOKED_AT,
        "ready",
        results=outputs,
        progress=100.0,
        errors_in_row=0,
        next_poll_at=now + timedelta(seconds=60),
    ):
        return False
    deps.inflight.release(step.id)  # type: ignore[arg-type]
    learn_from_look(deps.durations, step, batch, now, done=True, progress=100.0)
    return True


def _still_working(
    deps: Deps, step: Step, batch: Batch, job: Job, now: datetime, until_deadline: float | None
) -> Outcome:
    """The job is working: learn from the look, and look again when it is likely done.

    The answer is ``looked``: with webhooks on, the wire waits for the job's webhook before that look.
    """
    key = duration_key_of(step, batch)
    learn_from_look(deps.durations, step, batch, now, done=False, progress=job.progress, key=key)
    elapsed = (now - as_utc(step.submitted_at or now)).total_seconds()
    longest = ceiling(deps, until_deadline)
    delay = next_look_delay(deps.durations, step, batch, elapsed, job.progress, longest, key=key)
    deps.ledger.polled(
        step.id,  # type: ignore[arg-type]
        LOOKED_AT,
        "running",
        errors_in_row=0,
        progress=job.progress,
        next_poll_at=now + timedelta(seconds=delay + 30),
    )
    deps.inflight.refresh(step.id, release_at=now.timestamp() + delay)  # type: ignore[arg-type]
    return Outcome("again", max(0.05, delay), f"{job.status} {job.progress:.0f}%", looked=True)


def _past_deadline(deps: Deps, step: Step) -> Outcome:
    """The job is still running (or could not be seen) past its deadline: interrupt it and fail the step."""
    interrupt_job(deps.client, step)
    seconds = deadline_of(deps, step).total_seconds()
    fail_step(deps, step, LOOKED_AT, f"deadline passed ({seconds:.0f} s): job interrupted")
    return NEXT


def _choices(client: LetzAIClient, choice_ids: list[str], have: list[Output]) -> list[dict[str, Any]]:
    """Outputs for edit choices listed by id only (each read with ``GET /images/{id}``)."""
    known = {o.image_id for o in have}
    extra: list[dict[str, Any]] = []
    for cid in choice_ids:
        if cid in known:
            continue
        image = client.images.get(cid)
        if image.done:
            extra.extend({"url": o.url, "image_id": cid} for o in image.outputs[:1])
    return extra
