"""The one place that builds Celery canvases.

Per item: for each variant, a chain ``submit → poll → copy`` per step, in step order; the variants'
chains form a chord whose callback (``finish_item``) gathers the item. Steps already finished are left
out, so re-enqueueing an item (resume, retry, the reconciler) only runs what is left. Messages carry
step and item ids only.
"""

from __future__ import annotations

from itertools import groupby

from celery import chain, chord
from celery.canvas import Signature

from storage.models import STEP_TERMINAL, Step, utcnow
from tasks import runtime


def step_chain(step: Step) -> list[Signature]:
    """The tasks that take one step from where it stands to done."""
    from tasks.definitions import copy_outputs, poll_step, submit_step

    assert step.id is not None
    tasks: list[Signature] = []
    if step.state in ("planned", "submitting"):
        tasks.append(submit_step.si(step.id))
    if step.state in ("planned", "submitting", "submitted", "running"):
        tasks.append(poll_step.si(step.id))
    if step.state not in STEP_TERMINAL:
        tasks.append(copy_outputs.si(step.id))
    return tasks


def item_canvas(item_id: int, steps: list[Step]) -> Signature:
    """A chord of per-variant chains with ``finish_item`` as its callback (and an errback)."""
    from tasks.definitions import finish_item, item_failed

    chains = []
    for _variant, group in groupby(
        sorted(steps, key=lambda s: (s.variant, s.index)), key=lambda s: s.variant
    ):
        tasks = [sig for st in group for sig in step_chain(st)]
        if tasks:
            chains.append(chain(*tasks))
    callback = finish_item.si(item_id).on_error(item_failed.s(item_id=item_id))
    if not chains:
        return callback
    return chord(chains, callback)


def enqueue_item(item_id: int, *, claimed: bool = False) -> bool:
    """Send an item's remaining work; False when nothing is left (the item is then settled directly).

    ``claimed``: the caller has just marked the item queued (the feeder's claim), so it is not marked again.
    """
    ledger = runtime.ledger()
    steps = ledger.item_steps(item_id)
    canvas = item_canvas(item_id, steps)
    if not claimed:
        ledger.set_item_state(item_id, ("pending", "queued"), "queued", kicked_at=utcnow())
    canvas.apply_async()
    return True
