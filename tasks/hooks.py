"""Webhooks on the wire: a poll that waits for its job's webhook, and what a webhook call sets off.

With ``LETZFLOW_WEBHOOK_URL`` set, every POST carries its own webhook URL (:mod:`tasks.posting`), and a
poll does not look at a working job on a timer: it parks (:mod:`tasks.waker`), and the job's webhook
publishes the parked look at once; a worker's sweep publishes it at its fallback time if the webhook is
lost. The webhook is a hint only: the look is the usual ``GET`` (:func:`tasks.steps.poll`); the body's
status and media URLs are never used.

- :func:`park_chain` parks a warm job's first look from its submit task (nothing is worth a ``GET``
  before the webhook); :func:`poll_woken` is the poll task's body with webhooks on: every later look
  parks after seeing the job working, and of two messages of one look (a redelivery, a re-kick) only the
  baton's holder goes on with the chain.
- :func:`on_webhook` is the receiver's one call (:mod:`workers.webhooks`): the token names an open step,
  or nothing happens at all (no message, no ledger write). For a step whose POST answer was lost, the job
  the body names is kept in Redis for its recovery (:func:`hooked_job`, ``tasks.lost_answers``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

import redis
from celery import Task
from kombu.utils.json import dumps

from letzai.webhook_tokens import TOKEN_RE, same_hash, token_hash
from letzflow.engine.polling import DEFAULT_EXPECTED
from storage.models import Batch, Step, as_utc, utcnow
from tasks import runtime
from tasks.batch_control import look_again
from tasks.celery_app import publish_parked
from tasks.look_timing import duration_key_of
from tasks.outcomes import Outcome, ceiling
from tasks.run_end import end_run, run_again
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


def poll_woken(task: Task, step_id: int, baton: str | None, look: Callable[[int], Outcome]) -> Outcome:
    """The poll task with webhooks on. ``look``: one recorded look (:func:`tasks.steps.poll`).

    Raises:
        Ended: the next look is parked; or another message of this look went on with the chain; or the
            look is due again soon (a rate limit, a failed GET) and was sent (:mod:`tasks.run_end`).
    """
    waker = runtime.waker()
    if baton is not None and waker.stale(step_id, baton):
        end_run(task)
    if baton is None:
        first = _first_wait(step_id)
        if first is not None:
            _park(task, waker, step_id, baton, first)
    outcome = look(step_id)
    if outcome.action == "again" and outcome.looked:
        _park(task, waker, step_id, baton, fallback(outcome.delay))
    if outcome.action == "again":
        run_again(task, outcome.delay)
    if waker.claim(step_id, baton) is None:
        end_run(task)
    waker.done(step_id)
    return outcome


def first_park(step: Step, batch: Batch) -> float | None:
    """With webhooks on, the fallback (s) of a just-submitted job's first look, parked at once; None: the
    first look is sent as without webhooks (webhooks off, or nothing is known of such jobs yet, when one
    early look lets the job's progress predict its end: refused submitters pace by that prediction)."""
    if not enabled():
        return None
    figure = runtime.durations().figure(duration_key_of(step, batch))
    if figure.cold:
        return None
    return fallback(figure.first_look or DEFAULT_EXPECTED.get(step.remote_kind, 15.0))


def park_chain(task: Task, step_id: int, wait: float) -> None:
    """Park the chain's next task (the job's poll) instead of letting Celery send it: the job's webhook,
    or the sweep after ``wait`` s, sends it. Celery's own hand-over is copied (the rest of the chain, the
    parent and root ids), with a baton added."""
    chain = task.request.chain
    if not chain:
        return
    waker = runtime.waker()
    try:
        baton = waker.claim(step_id, None)
        assert baton is not None  # a caller without a baton always draws one
        poll = dict(chain[-1])
        poll["kwargs"] = {**(poll.get("kwargs") or {}), "baton": baton}
        poll["options"] = {
            **(poll.get("options") or {}),
            "chain": list(chain[:-1]),
            "parent_id": task.request.id,
            "root_id": task.request.root_id,
        }
        waker.park(step_id, dumps(poll), fallback_at=time.time() + wait)
    except redis.RedisError as exc:  # Celery sends the poll on as usual; it parks itself
        log.warning("step %s: could not park its first look (%s)", step_id, exc)
        return
    chain.clear()  # Celery sends nothing on: the parked message carries the rest of the chain
    _take_back_if_hinted(waker, step_id)


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
    wait = first_park(step, batch)
    if wait is None:
        return None
    age = (utcnow() - as_utc(step.submitted_at)).total_seconds()
    if age > wait:
        return None
    ledger.update_step(step_id, next_poll_at=utcnow() + timedelta(seconds=wait + 30))
    return wait


def _park(task: Task, waker: Waker, step_id: int, baton: str | None, wait: float) -> None:
    """Keep the next look (due at once) for the job's webhook, or for the sweep ``wait`` s from now;
    this message ends here (acked, the chain goes on in the parked one).

    Raises:
        Ended: always (the look is parked, or another message of this look went on).
    """
    new = waker.claim(step_id, baton)
    if new is None:
        end_run(task)
    message = task.signature_from_request(
        task.request, None, {"baton": new}, countdown=0, retries=task.request.retries + 1
    )
    waker.park(step_id, dumps(dict(message)), fallback_at=time.time() + wait)
    _take_back_if_hinted(waker, step_id)
    end_run(task)


def _take_back_if_hinted(waker: Waker, step_id: int) -> None:
    """Just after parking: a webhook that came meanwhile found nothing parked and left a hint; the job has
    ended, so send the parked look at once."""
    if waker.take_hint(step_id):
        parked = waker.unpark(step_id)
        if parked is not None:
            publish_parked(parked)


def sweep_due(now: float | None = None) -> int:
    """Publish the parked looks whose fallback time has come (their webhooks were lost); how many.

    Every worker calls it on a timer (:mod:`workers.liveness_step`); each parked look is taken by one.
    """
    due = runtime.waker().due(time.time() if now is None else now)
    for parked in due:
        publish_parked(parked)
    if due:
        log.info("webhooks: %d parked look(s) past their fallback time sent (webhook lost or late)", len(due))
    return len(due)


#: A job id named by a webhook call for a step whose POST answer was lost, by the POST's token hash.
HOOKED_KEY = "letzflow:hooked:{}"
HOOKED_TTL = 86400


def on_webhook(token: str, job_id: str | None = None) -> bool:
    """A webhook call with ``token``: wake its step's poll. False: no open step has that token (the caller
    answers 404 and nothing was sent or written).

    ``job_id``: the job the call's body names. For a step still ``submitting`` (its POST's answer lost) it
    is kept as a candidate under the token's hash: only LetzAI knows that token, from that one POST, so the
    recovery adopts the job once a GET shows it exists (:func:`hooked_job`), where nothing in its listed or
    fetched object could tell it apart (upscales echo no ``webhookUrl``). A call that comes only after the
    step ended ``unconfirmed`` reopens it (:func:`tasks.batch_control.look_again`): the same recovery then
    adopts the job, and the item goes on."""
    if not TOKEN_RE.match(token):
        return False
    step = runtime.ledger().open_step_by_webhook(token_hash(token))
    if step is None or step.id is None or not same_hash(step.webhook_hash, token):
        return False
    if step.state in WAKES:
        parked = runtime.waker().wake(step.id)
        if parked is not None:
            publish_parked(parked)
    elif step.state in ("submitting", "unconfirmed") and job_id and step.webhook_hash:
        runtime.redis_client().set(HOOKED_KEY.format(step.webhook_hash), job_id, ex=HOOKED_TTL)
        if step.state == "unconfirmed" and look_again(step.batch_id, step.id):
            log.warning(
                "step %s: a late webhook named job %s for its lost POST answer; looking for it again "
                "(nothing is re-sent)",
                step.id,
                job_id,
            )
    return True


def came_late(token: str) -> bool:
    """Whether a call :func:`on_webhook` turned away carried the token of a step that has ended (its look
    saw the job done first, or the step was ended), rather than a token letzflow never gave out."""
    return bool(TOKEN_RE.match(token)) and runtime.ledger().ended_step_by_webhook(token_hash(token))


def hooked_job(hook_hash: str | None) -> str | None:
    """The job a webhook call to this POST's token named (:func:`on_webhook`), if any came."""
    if not hook_hash:
        return None
    try:
        raw = runtime.redis_client().get(HOOKED_KEY.format(hook_hash))
    except redis.RedisError:  # the list is looked at as without it
        return None
    return raw.decode() if isinstance(raw, bytes) else raw
