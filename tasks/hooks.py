"""Webhooks on the wire: a poll that waits for its job's webhook, and what a webhook call sets off.

With ``LETZFLOW_WEBHOOK_URL`` set, every POST carries its own webhook URL (:mod:`tasks.posting`), and a
poll does not look at a working job on a timer: it parks (:mod:`tasks.waker`) with a fallback countdown
that only matters if the webhook is lost, and a webhook call publishes the parked look at once. The webhook
is a hint only: the look is the usual ``GET`` (:func:`tasks.steps.poll`); the body's status and media URLs
are never used.

- :func:`poll_woken` is the poll task's body with webhooks on: the chain's first poll parks at once
  (nothing is worth a ``GET`` before the webhook), every later look parks after seeing the job working,
  and of the two messages of one look only the baton's holder goes on with the chain.
- :func:`on_webhook` is the receiver's one call (:mod:`workers.webhooks`): the token names an open step,
  or nothing happens at all (no message, no ledger write).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from celery import Task
from celery.exceptions import Ignore
from kombu.utils.json import dumps, loads

from letzai.webhook_tokens import TOKEN_RE, same_hash, token_hash
from storage.models import as_utc, utcnow
from tasks import runtime
from tasks.celery_app import app
from tasks.look_timing import duration_key_of
from tasks.outcomes import Outcome, ceiling
from tasks.polling import DEFAULT_EXPECTED
from tasks.waker import Waker

log = logging.getLogger(__name__)

#: A parked look's fallback: this many times the wait polling alone would have chosen, plus the slack (s).
FALLBACK_FACTOR = 1.5
FALLBACK_SLACK = 3.0
#: States in which a webhook wakes the step's poll.
WAKES = ("submitted", "running")


def enabled() -> bool:
    return bool(runtime.settings().letzflow_webhook_url)


def fallback(wait: float) -> float:
    """The countdown of a parked look whose polling-only wait would have been ``wait`` seconds."""
    return min(ceiling(), wait * FALLBACK_FACTOR + FALLBACK_SLACK)


def poll_woken(task: Task, step_id: int, baton: str | None, look: Callable[[int], Outcome]) -> str:
    """The poll task with webhooks on. ``look``: one recorded look (:func:`tasks.steps.poll`).

    Raises:
        Retry: the next look is parked (or due: a rate limit, a failed GET).
        Ignore: another message of this look went on with the chain; this one ends here.
    """
    waker = runtime.waker()
    if baton is not None and waker.stale(step_id, baton):
        raise Ignore()
    if baton is None:
        first = _first_wait(step_id)
        if first is not None:
            _park(task, waker, step_id, baton, first)
    outcome = look(step_id)
    if outcome.action == "again" and outcome.looked:
        _park(task, waker, step_id, baton, fallback(outcome.delay))
    if outcome.action == "again":
        raise task.retry(countdown=outcome.delay, max_retries=None)
    if waker.claim(step_id, baton) is None:
        raise Ignore()
    waker.done(step_id)
    return outcome.action


def _first_wait(step_id: int) -> float | None:
    """The chain's first poll of a job just submitted: the fallback to park with, or None to look now
    (no such job, or it was submitted long enough ago that this is a re-kick)."""
    ledger = runtime.ledger()
    found = ledger.step_with_batch(step_id)
    if found is None:
        return None
    step, batch = found
    if step.state not in WAKES or step.polls or not step.submitted_at:
        return None
    figure = runtime.durations().figure(duration_key_of(step, batch))
    expected = figure.first_look or DEFAULT_EXPECTED.get(step.remote_kind, 15.0)
    wait = fallback(expected)
    age = (utcnow() - as_utc(step.submitted_at)).total_seconds()
    if age > wait:
        return None
    ledger.update_step(step_id, next_poll_at=utcnow() + timedelta(seconds=wait + 30))
    return wait


def _park(task: Task, waker: Waker, step_id: int, baton: str | None, wait: float) -> None:
    """Publish the next look with countdown ``wait`` and keep a copy due at once for the webhook."""
    new = waker.claim(step_id, baton)
    if new is None:
        raise Ignore()
    now = task.signature_from_request(
        task.request, None, {"baton": new}, countdown=0, retries=task.request.retries + 1
    )
    waker.park(step_id, dumps(dict(now)), ttl=wait)
    if waker.take_hint(step_id) and waker.unpark(step_id) is not None:
        wait = 0.0  # the webhook came while this look was under way: look again at once
    raise task.retry(kwargs={"baton": new}, countdown=wait, max_retries=None)


def on_webhook(token: str) -> bool:
    """A webhook call with ``token``: wake its step's poll. False: no open step has that token (the caller
    answers 404 and nothing was sent or written)."""
    if not TOKEN_RE.match(token):
        return False
    step = runtime.ledger().open_step_by_webhook(token_hash(token))
    if step is None or step.id is None or not same_hash(step.webhook_hash, token):
        return False
    if step.state in WAKES:
        parked = runtime.waker().wake(step.id)
        if parked is not None:
            app.signature(loads(parked)).apply_async()
    # A step still ``submitting`` has lost its POST's answer: its recovery finds the job by this token.
    return True
