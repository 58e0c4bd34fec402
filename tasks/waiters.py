"""Submitters waiting for an in-flight slot: parked in Redis, handed a slot the moment one frees.

A submit refused a slot (the cap is reached) does not ask again on a timer: its message (the rest of the
item's chain in its options) is parked with the limiter (:meth:`tasks.limits.InflightLimiter.park`) and
this task run ends (acked, :func:`tasks.run_end.end_run`). The release that frees a slot grants it to the
most deserving parked waiter and publishes that waiter's message, whose submit then finds the slot its
own: one run per grant, and no slot idles between a job's end and the next POST while someone waits.

The fallback bounds every wait: a parked waiter not handed a slot by its fallback time (releases lost with
a crash, a Redis that lost the line) is sent by a worker's sweep to ask again itself; the sweep also hands
over slots freed without a release (leases run out). A Redis that lost a parked message loses only that
ask: the step's ``next_poll_at`` lies past the fallback, so the reconciler re-kicks it.
"""

from __future__ import annotations

import logging
import time

import redis
from celery import Task
from kombu.utils.json import dumps

from tasks import runtime
from tasks.run_end import end_run

log = logging.getLogger(__name__)

#: A parked waiter's fallback: this many times the wait the slot predictions give, plus the slack (s),
#: at most :data:`FALLBACK_MAX` (each re-ask re-parks it; the line keeps its place).
FALLBACK_FACTOR = 2.0
FALLBACK_SLACK = 2.0
FALLBACK_MAX = 30.0


def fallback(wait: float) -> float:
    """Seconds a waiter told to come back after ``wait`` s stays parked at most."""
    return min(FALLBACK_MAX, wait * FALLBACK_FACTOR + FALLBACK_SLACK)


def park(task: Task, step_id: int, wait: float) -> None:
    """Park this submit run's message for a slot; ends the run.

    Raises:
        Ended: the message is parked (or was handed a slot at once, and published): the run returns
            (``tasks.run_end``; ``Ignore`` where a return would mean more).
        Retry: Redis refused the parking; the submit asks again after ``wait`` s, as without parking.
    """
    message = task.signature_from_request(
        task.request, None, None, countdown=0, retries=task.request.retries + 1
    )
    try:
        runtime.inflight().park(step_id, dumps(dict(message)), time.time() + fallback(wait))
    except redis.RedisError as exc:
        log.warning("step %s: could not park for a slot (%s); asking again in %.1f s", step_id, exc, wait)
        raise task.retry(countdown=wait, max_retries=None) from exc
    end_run(task)


def sweep(now: float | None = None) -> int:
    """Hand slots freed without a release to parked waiters, and send the waiters past their fallback.

    Every worker calls it on a timer (:mod:`workers.liveness_step`); each message is taken by one."""
    sent = runtime.inflight().sweep(now)
    if sent:
        log.debug("waiters: %d parked submitter(s) sent by the sweep", sent)
    return sent
