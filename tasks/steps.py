"""The work of one LetzAI job, as plain functions: submit it once, poll it, copy its media.

Each function loads its step by id, does at most one remote call, records what happened with a guarded
ledger update, and answers an :class:`Outcome`: go on with the chain, or run again after a delay. None of
them sleeps. Calling any of them twice for the same step (a redelivered message) changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from letzai.errors import ConnectError, LetzAIError, RateLimited, ValidationError
from letzai.identity import could_share_job
from letzai.responses import Output
from letzai.retry import backoff, classify
from storage import lanes
from storage.models import STEP_TERMINAL, Batch, Item, Step, as_utc, utcnow
from tasks import runtime
from tasks.batch_control import cancel_step, halt_batch, interrupt_job
from tasks.inputs import request_for, resource
from tasks.limits import Lane
from tasks.look_timing import duration_key_of, first_look_delay, learn_from_look, next_look_delay
from tasks.recovery import Found, find_created_job

log = logging.getLogger(__name__)

MAX_SUBMITS = 5
#: Seconds a lost POST answer is given before the list endpoint is trusted to show the job.
LIST_SETTLE = 2.0
#: Failed GETs of a job in a row before its step fails (each waits up to the backoff cap; the deadline
#: usually comes first).
POLL_MAX_ATTEMPTS = 40


@dataclass(frozen=True)
class Outcome:
    """``next``: the chain goes on (its next task after ``delay`` seconds, if any). ``again``: run the same
    task after ``delay`` seconds."""

    action: str
    delay: float = 0.0
    note: str = ""


NEXT = Outcome("next")


def again(delay: float, note: str = "") -> Outcome:
    return Outcome("again", max(0.05, delay), note)


def _ceiling(until_deadline: float | None = None) -> float:
    """The longest wait before the next look: a safe fraction of the Redis visibility timeout (ETA tasks
    are redelivered past it), and no later than just past the job's deadline."""
    ceiling = runtime.settings().letzflow_visibility_timeout / 10
    if until_deadline is not None:
        ceiling = min(ceiling, max(0.0, until_deadline) + 0.1)
    return ceiling


def _deadline(step: Step) -> timedelta:
    s = runtime.settings()
    seconds = s.letzflow_video_deadline if step.remote_kind == "video" else s.letzflow_image_deadline
    return timedelta(seconds=seconds)


def _fail(step: Step, expected: tuple[str, ...], message: str, exc: BaseException | None = None) -> None:
    runtime.ledger().transition(
        step.id,  # type: ignore[arg-type]
        expected,
        "failed",
        error_class=type(exc).__name__ if exc else "StepFailed",
        error_status=getattr(exc, "status", None),
        error_message=message[:2000],
        finished_at=utcnow(),
        next_poll_at=None,
    )
    runtime.inflight().release(step.id)  # type: ignore[arg-type]


# -- submit -----------------------------------------------------------------------------------------
def submit(step_id: int) -> Outcome:
    """Submit a step's job exactly once (or adopt the job an earlier, answer-lost POST created)."""
    ledger = runtime.ledger()
    found = ledger.step_with_batch_item(step_id)
    if found is None or found[0].state not in ("planned", "submitting"):
        return NEXT
    step, batch, item = found
    if batch.state == "cancelled" and step.state == "planned":
        ledger.transition(step_id, ("planned",), "cancelled", finished_at=utcnow())
        return NEXT
    if batch.state != "running":
        return NEXT
    previous = ledger.previous_step(step)
    if previous is not None and previous.state != "done":
        if previous.state in STEP_TERMINAL:
            ledger.transition(
                step_id,
                ("planned",),
                "skipped",
                finished_at=utcnow(),
                error_message=f"skipped: step {previous.index + 1} ({previous.kind}) ended {previous.state}",
            )
            return NEXT
        ledger.update_step(step_id, next_poll_at=utcnow() + timedelta(seconds=5))
        return again(5, "previous step not finished")
    if previous is not None and step.state == "planned" and step.branch != previous.branch:
        wanted = lanes.source_output(step.branch, previous.branch)
        got = len(previous.results or [])
        if wanted >= got:
            ledger.transition(
                step_id,
                ("planned",),
                "skipped",
                finished_at=utcnow(),
                error_message=f"skipped: step {previous.index + 1} ({previous.kind}) gave {got} image(s), "
                f"this branch works on image {wanted + 1}",
            )
            return NEXT
    if step.state == "submitting":
        return _recover_submit(step, batch, item, previous)

    lane = Lane(batch.id, batch.priority, batch.weight, batch.max_inflight or 0)
    delay = runtime.inflight().acquire_or_wait(
        step_id, runtime.expected_duration(duration_key_of(step, batch)), lane
    )
    if delay:
        due = utcnow() + timedelta(seconds=delay + 30)
        if step.next_poll_at is None or as_utc(step.next_poll_at) < due - timedelta(seconds=20):
            # a write per ask would cost more than the ask itself
            ledger.update_step(step_id, next_poll_at=due + timedelta(seconds=20))
        return again(delay, "waiting for an in-flight slot")
    wait = runtime.rate().take()
    if wait > 0:
        return again(wait, "rate limited locally")
    if step.content_key and batch.reuse and step.submit_attempts == 0:
        shared = _rendered_elsewhere(step, batch)
        if shared is not None:
            runtime.inflight().release(step_id)
            return shared
    attempts = ledger.begin_submit_counted(step_id, batch.id)
    if attempts is None:
        runtime.inflight().release(step_id)
        return NEXT
    step.state, step.submit_attempts = "submitting", attempts  # what the guarded update just wrote
    if not ledger.claim_job(batch.id):
        _fail(
            step,
            ("submitting",),
            f"max_jobs={batch.max_jobs} reached: the batch may not create more LetzAI jobs",
        )
        return NEXT
    return _post(step, batch, item, previous)


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


def _post(step: Step, batch: Batch, item: Item, previous: Step | None) -> Outcome:
    ledger = runtime.ledger()
    assert step.id is not None
    try:
        endpoint, body, skip = request_for(batch, item, step, previous)
        job = resource(endpoint).create(skip_checks=skip, **body)
    except ValidationError as exc:
        ledger.unclaim_job(batch.id)
        _fail(step, ("submitting",), f"invalid request: {exc.message}", exc)
        return NEXT
    except LetzAIError as exc:
        return _post_failed(step, batch, exc)
    except Exception as exc:  # a local input (upload, presign, mask file) failed before any POST
        if getattr(exc, "retryable", False):
            ledger.transition(step.id, ("submitting",), "planned")
            ledger.unclaim_job(batch.id)
            runtime.inflight().release(step.id)
            return again(backoff(step.submit_attempts), f"input not ready: {exc}")
        ledger.unclaim_job(batch.id)
        _fail(step, ("submitting",), f"input could not be prepared: {exc}", exc)
        return NEXT
    return _accepted(step, batch, job.id, job.progress)


def _accepted(
    step: Step, batch: Batch, remote_id: str, progress: float = 0.0, *, adopted: bool = False
) -> Outcome:
    """Store the job's id; the chain's poll is then sent to look first when such jobs are usually done
    (or early, by the cold look, when nothing is learned for them yet)."""
    assert step.id is not None
    now = utcnow()
    first = first_look_delay(step, batch, _ceiling(_deadline(step).total_seconds()))
    values: dict[str, Any] = {
        "remote_id": remote_id,
        "adopted": adopted,
        "submitted_at": now,
        "deadline_at": now + _deadline(step),
        "next_poll_at": now + timedelta(seconds=first),
        "progress": progress,
        "error_class": None,
        "error_status": None,
        "error_message": None,
        "errors_in_row": 0,
    }
    ledger = runtime.ledger()
    try:
        ledger.transition(step.id, ("submitting",), "submitted", **values)
    except IntegrityError:
        if adopted:  # another step recorded it meanwhile: look again, it is not ours to take
            return again(1, "listed job claimed meanwhile")
        # Our POST answered with this id: it is ours. A step that adopted it from a list gives it back.
        note = f"job {remote_id} was created by step {step.id}'s own POST; looking for this step's job again"
        if not ledger.claims.take_over(step, remote_id, note):
            holder = ledger.claims.holder_of(step.remote_kind, remote_id)
            _fail(
                step,
                ("submitting",),
                f"job {remote_id} answered to this POST is held by step {holder.id if holder else '?'}, "
                "which has already stored it: lineage conflict, nothing re-sent",
            )
            return NEXT
        log.error("step %s: took back job %s from the step that had adopted it", step.id, remote_id)
        ledger.transition(step.id, ("submitting",), "submitted", **values)
    runtime.inflight().expect_release(step.id, now.timestamp() + first)
    return Outcome("next", first)


def _post_failed(step: Step, batch: Batch, exc: LetzAIError) -> Outcome:
    ledger = runtime.ledger()
    assert step.id is not None
    # A refused connection never reached the API: sending again is safe.
    decision_action = "retry" if isinstance(exc, ConnectError) else ""
    decision = classify(exc, step.submit_attempts, is_post=True)
    action = decision_action or decision.action
    ledger.update_step(
        step.id,
        error_class=type(exc).__name__,
        error_status=getattr(exc, "status", None),
        error_message=exc.message[:2000],
    )
    if action == "reconcile":
        ledger.update_step(step.id, next_poll_at=utcnow() + timedelta(seconds=decision.delay + 30))
        return again(max(LIST_SETTLE, decision.delay), "answer lost: reconcile before any new POST")
    ledger.unclaim_job(batch.id)
    if action == "retry":
        refused = isinstance(exc, RateLimited)  # a 429 created nothing: it is no submission attempt
        if not refused and step.submit_attempts >= MAX_SUBMITS:
            _fail(
                step, ("submitting",), f"gave up after {step.submit_attempts} submissions: {exc.message}", exc
            )
            return NEXT
        uncount = {"submit_attempts": max(0, step.submit_attempts - 1)} if refused else {}
        ledger.transition(step.id, ("submitting",), "planned", **uncount)
        runtime.inflight().release(step.id)
        delay = decision.delay if decision.action == "retry" else backoff(step.submit_attempts)
        ledger.update_step(step.id, next_poll_at=utcnow() + timedelta(seconds=delay + 30))
        return again(delay, exc.message)
    if action in ("stop_batch", "pause_batch"):
        ledger.transition(step.id, ("submitting",), "planned")
        runtime.inflight().release(step.id)
        halt_batch(batch.id, "stopped" if action == "stop_batch" else "paused", exc)
        return NEXT
    _fail(step, ("submitting",), exc.api_message if hasattr(exc, "api_message") else exc.message, exc)
    return NEXT


def _recover_submit(step: Step, batch: Batch, item: Item, previous: Step | None) -> Outcome:
    """The step is ``submitting``: a crash mid-POST or a lost answer. Find the job before any new POST.

    Every look is counted (``errors_in_row``); past ``LETZFLOW_LIST_ATTEMPTS`` looks that could not decide,
    the step is ``unconfirmed`` (or, with ``LETZFLOW_UNCONFIRMED=resubmit``, sent again).
    """
    ledger = runtime.ledger()
    assert step.id is not None and step.submitting_since is not None
    since = as_utc(step.submitting_since)
    age = (utcnow() - since).total_seconds()
    if age < LIST_SETTLE:
        return again(LIST_SETTLE - age, "letting the list endpoint catch up")
    looks = step.errors_in_row + 1
    try:
        endpoint, body, _skip = request_for(batch, item, step, previous)
        found = find_created_job(
            endpoint,
            body,
            since,
            resource(endpoint),
            claimed=lambda ids: ledger.claimed_remote_ids(step.remote_kind, list(ids)),
            twins=lambda: _twins(step, endpoint, body),
            look=looks,
        )
    except LetzAIError as exc:
        decision = classify(exc, looks, is_post=False, max_attempts=10**6)
        if decision.action in ("stop_batch", "pause_batch"):
            halt_batch(batch.id, "stopped" if decision.action == "stop_batch" else "paused", exc)
            return NEXT
        if isinstance(exc, RateLimited) and age < _deadline(step).total_seconds():
            # come back when told: no look was made (bounded by the step's deadline, then counted)
            return again(decision.delay, f"listing rate limited: {exc.message}"[:200])
        return _undecided(step, batch, looks, f"the list could not be read: {exc.message}", decision.delay)
    if found.found is Found.ADOPT:
        assert found.remote_id is not None
        log.info("step %s: adopted job %s (%s) after a lost answer", step.id, found.remote_id, found.why)
        return _accepted(step, batch, found.remote_id, adopted=True)
    if found.found is Found.ABSENT:
        in_flight = runtime.settings().letzai_timeout + 5 - age
        if step.error_class is None and in_flight > 0:
            # no POST of this step is known to have ended: one may still be on its way (a crash mid-POST,
            # or this message delivered twice); absence is only proven once it would have timed out
            return again(min(in_flight, 5.0), "a POST of this step may still be in flight")
        return _post_again(step, batch, item, previous, found.why)
    if found.final:
        looks = max(looks, runtime.settings().letzflow_list_attempts)
    return _undecided(step, batch, looks, found.why, backoff(looks))


def _undecided(step: Step, batch: Batch, looks: int, why: str, delay: float) -> Outcome:
    """A look that could not tell what the lost POST created: look again later, or end ``unconfirmed``."""
    assert step.id is not None
    s = runtime.settings()
    ledger = runtime.ledger()
    if looks < s.letzflow_list_attempts:
        ledger.update_step(
            step.id,
            errors_in_row=looks,
            error_message=f"answer lost; looking for its job ({looks}/{s.letzflow_list_attempts}): {why}"[
                :2000
            ],
            next_poll_at=utcnow() + timedelta(seconds=delay + 30),
        )
        return again(max(delay, 1.0), f"lost answer undecided: {why}"[:200])
    if s.letzflow_unconfirmed == "resubmit":
        log.warning(
            "step %s: lost answer unresolved (%s); re-sending as configured (may pay twice)", step.id, why
        )
        return _post_again(step, batch, None, None, f"unresolved after {looks} looks, resubmit policy: {why}")
    message = (
        f"unconfirmed: the POST's answer was lost and its job could not be identified after {looks} looks "
        f"({why}); it may have been created and billed. `letzflow retry --unconfirmed {step.batch_id}` sends "
        f"it again (may pay twice); `letzflow retry {step.batch_id}` looks again"
    )
    ledger.transition(
        step.id,
        ("submitting",),
        "unconfirmed",
        errors_in_row=looks,
        error_class="Unconfirmed",
        error_message=message[:2000],
        finished_at=utcnow(),
        next_poll_at=None,
    )
    runtime.inflight().release(step.id)
    log.error("step %s: %s", step.id, message)
    return NEXT


def _twins(step: Step, endpoint: str, body: dict[str, Any]) -> int:
    """Other unsettled POSTs whose job a listed object could be as well as this step's."""
    ledger = runtime.ledger()
    count = 0
    for other in ledger.claims.twins_submitting(step):
        found = ledger.step_with_batch_item(other.id)  # type: ignore[arg-type]
        if found is None or found[0].state != "submitting":
            continue
        try:
            other_endpoint, other_body, _ = request_for(
                found[1], found[2], other, ledger.previous_step(other)
            )
        except Exception:  # its request cannot be rebuilt: it could be anything
            count += 1
            continue
        if other_endpoint == endpoint and could_share_job(endpoint, body, other_body):
            count += 1
    return count


def _post_again(step: Step, batch: Batch, item: Item | None, previous: Step | None, why: str) -> Outcome:
    """The lost POST created nothing (proven, or the resubmit policy says so): POST once more, bounded."""
    ledger = runtime.ledger()
    assert step.id is not None
    if step.submit_attempts >= MAX_SUBMITS:
        _fail(step, ("submitting",), f"no job after {step.submit_attempts} submissions: {step.error_message}")
        return NEXT
    if not ledger.bump_submit(step.id, step.submit_attempts):
        return NEXT  # another worker is re-submitting this step
    runtime.inflight().acquire(step.id)
    log.info("step %s: the lost POST created no job (%s); submitting again", step.id, why)
    found = ledger.step_with_batch_item(step.id)
    assert found is not None
    fresh, _batch, fresh_item = found
    return _post(fresh, batch, item or fresh_item, previous or ledger.previous_step(fresh))


# -- poll -------------------------------------------------------------------------------------------
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
        # The job is paid for: transient GET failures are retried until its deadline, not a few times, and
        # a 429 (come back later) is no failure of the GET at all.
        decision = classify(exc, step.errors_in_row + 1, max_attempts=POLL_MAX_ATTEMPTS)
        if decision.action == "retry" and until_deadline is not None and until_deadline < 0:
            return _past_deadline(step)
        if decision.action == "retry":
            ledger.update_step(
                step_id,
                errors_in_row=step.errors_in_row + (0 if isinstance(exc, RateLimited) else 1),
                next_poll_at=now + timedelta(seconds=decision.delay + 30),
            )
            return again(decision.delay, exc.message)
        if decision.action in ("stop_batch", "pause_batch"):
            halt_batch(batch.id, "stopped" if decision.action == "stop_batch" else "paused", exc)
            return NEXT
        _fail(step, ("submitted", "running"), f"polling failed: {exc.message}", exc)
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
        _fail(step, ("submitted", "running"), f"LetzAI job {job.status}: {reason}")
        return NEXT
    if job.phase == "success" and step.remote_kind == "video":
        _fail(
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
    delay = next_look_delay(step, batch, elapsed, job.progress, _ceiling(until_deadline), key=key)
    ledger.polled(
        step_id,
        ("submitted", "running"),
        "running",
        errors_in_row=0,
        progress=job.progress,
        next_poll_at=now + timedelta(seconds=delay + 30),
    )
    runtime.inflight().refresh(step_id, release_at=now.timestamp() + delay)
    return again(delay, f"{job.status} {job.progress:.0f}%")


def _past_deadline(step: Step) -> Outcome:
    """The job is still running (or could not be seen) past its deadline: interrupt it and fail the step."""
    interrupt_job(step)
    _fail(
        step,
        ("submitted", "running"),
        f"deadline passed ({_deadline(step).total_seconds():.0f} s): job interrupted",
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
