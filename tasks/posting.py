"""One POST of a step's job and what its answer means: the id stored, or the error classified (a lost
answer goes to :mod:`tasks.lost_answers`, never straight to another POST)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from letzai.errors import LetzAIError, ValidationError
from letzai.retry import Action, Call, classify
from letzai.webhook_tokens import hook_url, new_token, token_hash
from storage.models import Batch, Item, Step, utcnow
from tasks import hooks, runtime
from tasks.batch_control import halt_batch
from tasks.inputs import request_for, resource
from tasks.look_timing import first_look_delay
from tasks.outcomes import NEXT, Outcome, again, ceiling, deadline_of, fail_step

log = logging.getLogger(__name__)

#: Seconds a lost POST answer is given before the list endpoint is trusted to show the job.
LIST_SETTLE = 2.0


def new_hook() -> tuple[str | None, str | None]:
    """A fresh webhook token for the next POST and its hash, or (None, None) when webhooks are off."""
    if not hooks.enabled():
        return None, None
    token = new_token()
    return token, token_hash(token)


def post(step: Step, batch: Batch, item: Item, previous: Step | None, token: str | None = None) -> Outcome:
    """POST the step's job; ``token``: its webhook token (its hash is already in the ledger), if any."""
    try:
        endpoint, body, skip = request_for(batch, item, step, previous)
    except ValidationError as exc:
        return _invalid(step, batch, exc)
    except Exception as exc:  # its input (an upload to LetzAI, a presign, a mask file) failed: nothing POSTed
        return _input_failed(step, batch, exc)
    base = runtime.settings().letzflow_webhook_url
    if token and base:
        body["webhookUrl"] = hook_url(base, token)
    try:
        job = resource(endpoint).create(skip_checks=skip, **body)
    except ValidationError as exc:
        return _invalid(step, batch, exc)
    except LetzAIError as exc:
        return _post_failed(step, batch, exc)
    return accepted(step, batch, job.id, job.progress)


def _invalid(step: Step, batch: Batch, exc: ValidationError) -> Outcome:
    runtime.ledger().unclaim_job(batch.id)
    fail_step(step, ("submitting",), f"invalid request: {exc.message}", exc)
    return NEXT


def _input_failed(step: Step, batch: Batch, exc: Exception) -> Outcome:
    """The step's input could not be prepared, so no job was POSTed: never reconciled as a lost answer.

    An upload's 401/403 stops and its 402 pauses the batch, as a POST's would; a lost answer, a 5xx or a
    429 is tried again (a 429 without counting); anything else fails the step.
    """
    ledger = runtime.ledger()
    assert step.id is not None
    decision = classify(exc, Call.PREPARE_INPUT, step.submit_attempts)
    ledger.unclaim_job(batch.id)
    match decision.action:
        case Action.RETRY:
            _unsent(step, decision.counts)
            return again(decision.delay, f"input not ready: {decision.reason}")
        case Action.STOP_BATCH | Action.PAUSE_BATCH if isinstance(exc, LetzAIError):
            return _halt(step, batch, decision.action, exc)
        case _:
            fail_step(step, ("submitting",), decision.reason, exc)
            return NEXT


def _halt(step: Step, batch: Batch, action: Action, exc: LetzAIError) -> Outcome:
    """The key or the credits were refused: nothing was created, the batch stops (401/403) or pauses (402)."""
    _unsent(step, counts=False)
    halt_batch(batch.id, "stopped" if action is Action.STOP_BATCH else "paused", exc)
    return NEXT


def _unsent(step: Step, counts: bool = True) -> None:
    """No job was created: the step is ``planned`` again and its in-flight slot free; ``counts``: whether
    this try counts toward the step's submissions (a 429 does not; nor does a refusal that halts the batch:
    a key or credits refused at every try would fail the step on its next resume)."""
    assert step.id is not None
    values = {} if counts else {"submit_attempts": max(0, step.submit_attempts - 1)}
    if runtime.ledger().transition(step.id, ("submitting",), "planned", **values):
        runtime.inflight().release(step.id)


def accepted(
    step: Step, batch: Batch, remote_id: str, progress: float = 0.0, *, adopted: bool = False
) -> Outcome:
    """Store the job's id; the chain's poll is then sent to look first when such jobs are usually done
    (or early, by the cold look, when nothing is learned for them yet)."""
    assert step.id is not None
    now = utcnow()
    first = first_look_delay(step, batch, ceiling(deadline_of(step).total_seconds()))
    park = hooks.first_park(step, batch)
    values: dict[str, Any] = {
        "remote_id": remote_id,
        "adopted": adopted,
        "submitted_at": now,
        "deadline_at": now + deadline_of(step),
        # the planned look plus the 30 s of slack every next_poll_at carries (the reconciler's rule)
        "next_poll_at": now + timedelta(seconds=(first if park is None else park) + 30),
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
            fail_step(
                step,
                ("submitting",),
                f"job {remote_id} answered to this POST is held by step {holder.id if holder else '?'}, "
                "which has already stored it: lineage conflict, nothing re-sent",
            )
            return NEXT
        log.error("step %s: took back job %s from the step that had adopted it", step.id, remote_id)
        ledger.transition(step.id, ("submitting",), "submitted", **values)
    runtime.inflight().expect_release(step.id, now.timestamp() + first)
    if park is not None:  # the chain's poll is parked for the job's webhook (tasks.hooks)
        return Outcome("next", 0.0, park=park)
    return Outcome("next", first)


def _post_failed(step: Step, batch: Batch, exc: LetzAIError) -> Outcome:
    ledger = runtime.ledger()
    assert step.id is not None
    decision = classify(exc, Call.SUBMIT, step.submit_attempts)
    ledger.update_step(
        step.id,
        error_class=type(exc).__name__,
        error_status=getattr(exc, "status", None),
        error_message=exc.message[:2000],
    )
    if decision.action is Action.RECONCILE:
        ledger.update_step(step.id, next_poll_at=utcnow() + timedelta(seconds=decision.delay + 30))
        return again(max(LIST_SETTLE, decision.delay), "answer lost: reconcile before any new POST")
    ledger.unclaim_job(batch.id)
    match decision.action:
        case Action.RETRY:
            _unsent(step, decision.counts)
            ledger.update_step(step.id, next_poll_at=utcnow() + timedelta(seconds=decision.delay + 30))
            return again(decision.delay, decision.reason)
        case Action.STOP_BATCH | Action.PAUSE_BATCH:
            return _halt(step, batch, decision.action, exc)
        case _:
            fail_step(step, ("submitting",), decision.reason, exc)
            return NEXT
