"""A step left ``submitting`` (a lost POST answer, or a crash mid-POST): find its job before any new POST,
bounded, ending ``unconfirmed`` when identity cannot be proven (:mod:`tasks.recovery` decides)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from letzai.errors import LetzAIError
from letzai.identity import could_share_job
from letzai.retry import MAX_SUBMITS, Action, Call, backoff, classify
from letzflow.engine.resources import ENDPOINT_OF_KIND
from storage.models import Batch, Item, Step, as_utc, utcnow
from tasks import hooks, runtime
from tasks.batch_control import halt_batch
from tasks.inputs import request_for, resource
from tasks.limits import lane_of
from tasks.look_timing import duration_key_of
from tasks.outcomes import NEXT, Outcome, again, deadline_of, fail_step
from tasks.posting import LIST_SETTLE, accepted, new_hook, post
from tasks.recovery import Found, find_created_job

log = logging.getLogger(__name__)


def recover_submit(step: Step, batch: Batch, item: Item, previous: Step | None) -> Outcome:
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
    hooked = _hooked(step, batch)
    if hooked is not None:
        return hooked
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
            hook_hash=step.webhook_hash,
        )
    except LetzAIError as exc:
        past_deadline = age >= deadline_of(step).total_seconds()
        decision = classify(exc, Call.LIST, looks, past_deadline=past_deadline)
        match decision.action:
            case Action.STOP_BATCH | Action.PAUSE_BATCH:
                halt_batch(batch.id, "stopped" if decision.action is Action.STOP_BATCH else "paused", exc)
                return NEXT
            case _ if not decision.counts:  # come back when told: no look was made
                return again(decision.delay, f"listing rate limited: {decision.reason}"[:200])
            case _:
                why = f"the list could not be read: {decision.reason}"
                return _undecided(step, batch, looks, why, decision.delay)
    if found.found is Found.ADOPT:
        assert found.remote_id is not None
        log.info("step %s: adopted job %s (%s) after a lost answer", step.id, found.remote_id, found.why)
        return accepted(step, batch, found.remote_id, adopted=True)
    if found.found is Found.ABSENT:
        in_flight = runtime.settings().letzai_timeout + 5 - age
        if step.error_class is None and in_flight > 0 and not _sender_dead(step):
            # no POST of this step is known to have ended: one may still be on its way (this message
            # delivered twice); absence is only proven once it would have timed out, or its worker died
            return again(min(in_flight, 5.0), "a POST of this step may still be in flight")
        return _post_again(step, batch, item, previous, found.why)
    if found.final:
        looks = max(looks, runtime.settings().letzflow_list_attempts)
    return _undecided(step, batch, looks, found.why, backoff(looks))


def _hooked(step: Step, batch: Batch) -> Outcome | None:
    """Adopt the job a webhook call to this POST's own token named (:func:`tasks.hooks.on_webhook`), once a
    GET shows it exists and no other step holds it; None: no such call came, or it cannot be confirmed yet
    (the list decides as before)."""
    job_id = hooks.hooked_job(step.webhook_hash)
    if job_id is None or runtime.ledger().claimed_remote_ids(step.remote_kind, [job_id]):
        return None
    try:
        job = resource(ENDPOINT_OF_KIND[step.remote_kind]).get(job_id)
    except LetzAIError as exc:
        log.info("step %s: job %s named by its webhook is not readable yet (%s)", step.id, job_id, exc)
        return None
    log.info(
        "step %s: adopted job %s after a lost answer: named by a webhook to its POST's token", step.id, job_id
    )
    return accepted(step, batch, job_id, job.progress, adopted=True)


def _undecided(step: Step, batch: Batch, looks: int, why: str, delay: float) -> Outcome:
    """A look that could not tell what the lost POST created: look again later, or end ``unconfirmed``."""
    assert step.id is not None
    s = runtime.settings()
    ledger = runtime.ledger()
    if looks < s.letzflow_list_attempts:
        ledger.update_step(
            step.id,
            while_in=("submitting",),  # another run may have adopted its job: its GET count starts at 0
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
    if ledger.transition(
        step.id,
        ("submitting",),
        "unconfirmed",
        errors_in_row=looks,
        error_class="Unconfirmed",
        error_message=message[:2000],
        finished_at=utcnow(),
        next_poll_at=None,
    ):  # else another run of this step adopted its job (or ended it), and holds or freed the slot
        runtime.inflight().release(step.id)
        log.error("step %s: %s", step.id, message)
    return NEXT


def _sender_dead(step: Step) -> bool:
    """The worker that sent this step's POST stopped beating (or left): its POST is no longer in flight."""
    if not step.submitting_by:
        return False
    try:
        return step.submitting_by not in runtime.liveness().alive(time.time())
    except Exception:  # Redis away: assume the POST may be in flight (waiting costs time, not money)
        return False


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
        fail_step(
            step, ("submitting",), f"no job after {step.submit_attempts} submissions: {step.error_message}"
        )
        return NEXT
    # a submitting step holds its slot; one that lost it (its lease ran out during long looks) waits for one
    # like any submitter, and looks once more when it comes back: the cap holds for re-sends too
    wait = runtime.inflight().acquire_or_wait(
        step.id, runtime.expected_duration(duration_key_of(step, batch)), lane_of(batch)
    )
    if wait:
        return again(wait, "the lost POST created no job; waiting for an in-flight slot to send it again")
    token, hook_hash = new_hook()
    if not ledger.bump_submit(step.id, step.submit_attempts, runtime.worker_name(), hook_hash):
        return NEXT  # another worker is re-submitting this step
    log.info("step %s: the lost POST created no job (%s); submitting again", step.id, why)
    found = ledger.step_with_batch_item(step.id)
    assert found is not None
    fresh, _batch, fresh_item = found
    return post(fresh, batch, item or fresh_item, previous or ledger.previous_step(fresh), token)
