"""The Celery tasks: thin wrappers that load by id, call a plain function, and retry or go on.

Every task here is idempotent and takes ids only (never prompts, keys or bytes).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import Task
from sqlalchemy.exc import OperationalError

from storage.models import utcnow
from tasks import batch as batches
from tasks import copying, hooks, messages, reconcile, runtime, steps, submitting, waiters
from tasks.celery_app import TASK_QUEUES, app
from tasks.outcomes import Outcome
from tasks.run_end import LetzflowTask, run_again

log = logging.getLogger(__name__)

#: Outcomes not worth an attempt row: waiting for a slot or a token costs nothing and happens often.
QUIET = ("waiting for an in-flight slot", "rate limited locally")


def letzflow_task(queue: str, **options: Any) -> Callable[[Callable[..., Any]], Task]:
    """The project's task decorator: an explicit wire name, queue, late acks, requeue on a lost worker,
    database retries.

    The name is ``letzflow.<function name>``, never the module path: moving a module must not rename a
    task on the wire (messages already queued would fail as unregistered).

    ``ignore_result=True`` is for tasks whose results nobody reads; storing one costs a Redis write per
    execution. That includes the last task of a chain in a chord header (``copy_outputs``): the Redis
    backend's chord join hands the return value to ``on_chord_part_return`` directly (a list per chord),
    whether or not the result is stored, and ``finish_item`` is an immutable signature that takes none.
    """

    def register(fn: Callable[..., Any]) -> Task:
        name = f"letzflow.{fn.__name__}"
        assert TASK_QUEUES[name] == queue, f"{name}: its queue is routed by tasks.celery_app.TASK_QUEUES"
        return app.task(  # type: ignore[no-any-return]
            base=LetzflowTask,
            bind=True,
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            autoretry_for=(OperationalError,),
            retry_backoff=True,
            retry_backoff_max=30,
            max_retries=None,
            **options,
        )(fn)

    return register


def _recorded(name: str, work: Callable[[int], Outcome], step_id: int) -> Outcome:
    started = utcnow()
    outcome = work(step_id)
    if not outcome.note.startswith(QUIET):
        runtime.ledger().record_attempt(step_id, name, (outcome.note or "ok")[:40], started)
    return outcome


def _run(task: Task, name: str, work: Callable[[int], Outcome], step_id: int) -> Outcome:
    outcome = _recorded(name, work, step_id)
    if outcome.for_slot:
        waiters.park(task, step_id, outcome.delay)
    if outcome.action == "again":
        run_again(task, outcome.delay)
    if outcome.park is not None:
        hooks.park_chain(task, step_id, outcome.park)
    elif outcome.delay > 0:
        _delay_next(task, outcome.delay)
    return outcome


def _delay_next(task: Task, delay: float) -> None:
    """Publish the chain's next task with a countdown of ``delay`` seconds.

    A job just submitted is not worth looking at before it is likely done: the poll that follows is sent to
    run then (the learned first-look time), rather than at once, where it would find the job still running
    and schedule itself again (a GET, a task execution, a message and ledger writes per job). Celery
    publishes ``request.chain[-1]`` with its options when this task returns.
    """
    chain = task.request.chain
    if chain:
        chain[-1].setdefault("options", {})["countdown"] = delay


@letzflow_task("submit", ignore_result=True)
def submit_step(self: Task, step_id: int) -> str:
    """POST the step's job once (or adopt the job a lost answer created)."""
    return _run(self, "submit", submitting.submit, step_id).action


#: A copy's time limits (s), also the poll's, since a poll may run an image's copy (:func:`_copy_here`): a
#: copy cut off by Celery's default 240 s would fail its step (the copy policy does not retry a time limit).
COPY_LIMITS: dict[str, Any] = {"soft_time_limit": 1700, "time_limit": 1800}


@letzflow_task("poll", ignore_result=True, **COPY_LIMITS)
def poll_step(self: Task, step_id: int, baton: str | None = None) -> str:
    """GET the job once; re-run itself with an adaptive countdown until it ends (with webhooks on: when
    its webhook comes, or at the fallback; ``baton``: whether this message may still go on, see
    :mod:`tasks.waker`)."""
    if hooks.enabled():
        outcome = hooks.poll_woken(self, step_id, baton, lambda sid: _recorded("poll", steps.poll, sid))
    else:
        outcome = _run(self, "poll", steps.poll, step_id)
    if outcome.copy_here:
        _copy_here(self, step_id)
    return outcome.action


def _copy_here(task: Task, step_id: int) -> None:
    """Copy a small job's media in the look that saw it done, when the chain's next task is that copy.

    The copy is then taken off the chain (one task execution and message less per image); a copy that
    fails and is to be tried again stays on it, with the policy's backoff as its countdown. Not done where
    the copy is the last task of a chord header: that task's return is what the chord's counter counts.
    """
    chain = task.request.chain
    nxt = chain[-1] if chain else None
    if not nxt or nxt.get("task") != messages.COPY_OUTPUTS or list(nxt.get("args") or ()) != [step_id]:
        return
    if (nxt.get("options") or {}).get("chord"):
        return
    outcome = _recorded("copy", copying.copy, step_id)
    if outcome.action == "again":
        nxt.setdefault("options", {})["countdown"] = outcome.delay
        return
    chain.pop()
    then_finish = (nxt.get("kwargs") or {}).get("then_finish")
    if then_finish is not None:
        batches.finish(then_finish)


@letzflow_task("media", ignore_result=True, **COPY_LIMITS)
def copy_outputs(self: Task, step_id: int, then_finish: int | None = None) -> str:
    """Stream the finished media to storage and verify it.

    ``then_finish``: this is the last task of a single-chain item (its last step's copy); settle that item
    here (what ``finish_item`` does) rather than in one more task execution and message.
    """
    action = _run(self, "copy", copying.copy, step_id).action
    if then_finish is not None and action == "next":
        batches.finish(then_finish)
    return action


@letzflow_task("batch", ignore_result=True)
def finish_item(self: Task, item_id: int) -> str | None:
    """Chord callback: settle the item (once) and check the batch barrier."""
    return batches.finish(item_id)


@letzflow_task("batch")
def gather_branches(self: Task, step_id: int) -> dict[str, Any]:
    """Chord callback of a split: the rest of the pipeline has run on every image of ``step_id``."""
    return batches.gather_branches(step_id)


@letzflow_task("batch", ignore_result=True)
def item_failed(self: Task, *args: Any, item_id: int) -> str | None:
    """Chord errback: a task of this item raised; settle the item if its steps all ended.

    Open steps are left as they are: the usual cause is the broker going away while a task published its
    next message (a Redis restart), not the work itself, and the reconciler re-kicks the item once its
    steps are overdue. Failing them here would fail healthy, possibly paid-for, work.
    """
    log.error("item %s: a task of its chord failed (%r); open steps left to the reconciler", item_id, args)
    return batches.finish(item_id)


@letzflow_task("batch", ignore_result=True)
def feed_batch(self: Task, batch_id: str) -> None:
    """Enqueue the next window of a batch's items, then come back while any are left."""
    delay = batches.feed(batch_id)
    if delay is not None:
        run_again(self, delay)


@letzflow_task("batch")
def finalize_batch(self: Task, batch_id: str) -> bool:
    """Write the manifest and close the batch (exactly once)."""
    return batches.finalize(batch_id)


@letzflow_task("batch", expires=120)
def reconcile_ledger(self: Task) -> dict[str, int]:
    """The periodic reconciler, offered by every worker (one pass at a time)."""
    return reconcile.reconcile()


def offer_reconcile(*, startup: bool = False) -> bool:
    """Enqueue a reconciler pass if this is the period's first offer of any worker (always at startup).

    Called by each worker's timer (:mod:`workers.liveness_step`); True when a pass was enqueued.
    """
    period = runtime.settings().letzflow_reconcile_every
    if not startup and not runtime.liveness().offer(period):
        return False
    reconcile_ledger.apply_async(expires=max(10.0, 4 * period))
    return True


@letzflow_task("batch")
def run_schedule(
    self: Task,
    name: str,
    spec_path: str,
    cron: str | None = None,
    reuse: bool = True,
    priority: int | None = None,
) -> str | None:
    """A schedule fired: claim the firing, then start its batch unless the previous one is still open."""
    from tasks.firing import fire

    return fire(name, spec_path, cron=cron, reuse=reuse, priority=priority)
