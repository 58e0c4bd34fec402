"""One POST of a step's job and what its answer means: the id stored, or the error classified (a lost
answer goes to :mod:`tasks.lost_answers`, never straight to another POST)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError

from letzai.errors import ConnectError, LetzAIError, RateLimited, ValidationError
from letzai.retry import backoff, classify
from letzai.webhook_tokens import hook_url, new_token, token_hash
from storage.models import Batch, Item, Step, utcnow
from tasks import runtime
from tasks.batch_control import halt_batch
from tasks.inputs import request_for, resource
from tasks.look_timing import first_look_delay
from tasks.outcomes import NEXT, Outcome, again, ceiling, deadline_of, fail_step

log = logging.getLogger(__name__)

MAX_SUBMITS = 5
#: Seconds a lost POST answer is given before the list endpoint is trusted to show the job.
LIST_SETTLE = 2.0


def new_hook() -> tuple[str | None, str | None]:
    """A fresh webhook token for the next POST and its hash, or (None, None) when webhooks are off."""
    if not runtime.settings().letzflow_webhook_url:
        return None, None
    token = new_token()
    return token, token_hash(token)


def post(step: Step, batch: Batch, item: Item, previous: Step | None, token: str | None = None) -> Outcome:
    """POST the step's job; ``token``: its webhook token (its hash is already in the ledger), if any."""
    ledger = runtime.ledger()
    assert step.id is not None
    try:
        endpoint, body, skip = request_for(batch, item, step, previous)
        base = runtime.settings().letzflow_webhook_url
        if token and base:
            body["webhookUrl"] = hook_url(base, token)
        job = resource(endpoint).create(skip_checks=skip, **body)
    except ValidationError as exc:
        ledger.unclaim_job(batch.id)
        fail_step(step, ("submitting",), f"invalid request: {exc.message}", exc)
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
        fail_step(step, ("submitting",), f"input could not be prepared: {exc}", exc)
        return NEXT
    return accepted(step, batch, job.id, job.progress)


def accepted(
    step: Step, batch: Batch, remote_id: str, progress: float = 0.0, *, adopted: bool = False
) -> Outcome:
    """Store the job's id; the chain's poll is then sent to look first when such jobs are usually done
    (or early, by the cold look, when nothing is learned for them yet)."""
    assert step.id is not None
    now = utcnow()
    first = first_look_delay(step, batch, ceiling(deadline_of(step).total_seconds()))
    values: dict[str, Any] = {
        "remote_id": remote_id,
        "adopted": adopted,
        "submitted_at": now,
        "deadline_at": now + deadline_of(step),
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
            fail_step(
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
    fail_step(step, ("submitting",), exc.api_message if hasattr(exc, "api_message") else exc.message, exc)
    return NEXT
