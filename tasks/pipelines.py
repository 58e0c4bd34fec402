"""The one place that builds Celery canvases.

Per item: for each variant, a chain ``submit → poll → copy`` per step, in step order; the variants'
chains form a chord whose callback (``finish_item``) gathers the item. Where a step yields several images
(an edit with ``imageCompletionsCount`` > 1 that is not the last step), its chain ends in a chord that runs
the rest of the pipeline once per image (``storage.lanes`` plans those branches) and whose callback
(``gather_branches``) gathers them back into the item's chord. Steps already finished are left out, so
re-enqueueing an item (resume, retry, the reconciler) only runs what is left: a branch whose split is done
joins the item's chord directly. Messages carry step and item ids only.
"""

from __future__ import annotations

from itertools import groupby

from celery import chain, chord
from celery.canvas import Signature

from storage import lanes
from storage.models import STEP_TERMINAL, Step, utcnow
from tasks import messages, runtime


def step_chain(step: Step) -> list[Signature]:
    """The tasks that take one step from where it stands to done."""
    assert step.id is not None
    tasks: list[Signature] = []
    if step.state in ("planned", "submitting"):
        tasks.append(messages.task(messages.SUBMIT_STEP, step.id))
    if step.state in ("planned", "submitting", "submitted", "running"):
        tasks.append(messages.task(messages.POLL_STEP, step.id))
    if step.state not in STEP_TERMINAL:
        tasks.append(messages.task(messages.COPY_OUTPUTS, step.id))
    return tasks


def branch_canvas(steps: list[Step], branch: str) -> list[Signature]:
    """What runs one branch of one variant (and every branch split from it): parallel signatures."""
    own = sorted((s for s in steps if s.branch == branch), key=lambda s: s.index)
    tasks = [sig for st in own for sig in step_chain(st)]
    children = sorted(
        {s.branch for s in steps if s.branch and lanes.parent(s.branch) == branch},
        key=lanes.last_output,
    )
    below = [
        sig
        for child in children
        for sig in branch_canvas([s for s in steps if lanes.within(s.branch, child)], child)
    ]
    if not tasks:
        return below
    if below:
        assert own[-1].id is not None
        tasks.append(chord(below, messages.task(messages.GATHER_BRANCHES, own[-1].id)))
    return [chain(*tasks)]


def item_canvas(item_id: int, steps: list[Step]) -> Signature:
    """A chord of per-variant canvases with ``finish_item`` as its callback (and an errback).

    An item with one plain chain left (one variant, no split: most items) is that chain followed by
    the item's fan-in (folded into its last copy): the same order, without the chord's counter in the
    result backend.
    """
    lanes_open = [
        sig
        for _variant, group in groupby(sorted(steps, key=lambda s: s.variant), key=lambda s: s.variant)
        for sig in branch_canvas(list(group), "")
    ]
    errback = messages.partial(messages.ITEM_FAILED, item_id=item_id)
    if len(lanes_open) == 1 and not any(isinstance(t, chord) for t in lanes_open[0].tasks):
        return chain(*_then_finish(list(lanes_open[0].tasks), item_id)).on_error(errback)
    callback = messages.task(messages.FINISH_ITEM, item_id).on_error(errback)
    if not lanes_open:
        return callback
    return chord(lanes_open, callback)


def _then_finish(tasks: list[Signature], item_id: int) -> list[Signature]:
    """A single chain's tasks, then the item's fan-in: folded into the last copy when the chain ends in one
    (one task execution and message less per item), else a ``finish_item`` task."""
    last = tasks[-1] if tasks else None
    if last is not None and last.task == messages.COPY_OUTPUTS and not last.kwargs:
        return [*tasks[:-1], messages.task(messages.COPY_OUTPUTS, *last.args, then_finish=item_id)]
    return [*tasks, messages.task(messages.FINISH_ITEM, item_id)]


def enqueue_item(item_id: int) -> None:
    """Send an item's remaining work again (a re-kick, a resume), marking it queued.

    The feeder's first sends are :func:`enqueue_claimed` (its claim has just marked them queued)."""
    ledger = runtime.ledger()
    canvas = item_canvas(item_id, ledger.item_steps(item_id))
    ledger.set_item_state(item_id, ("pending", "queued"), "queued", kicked_at=utcnow())
    canvas.apply_async()


def enqueue_claimed(item_ids: list[int]) -> None:
    """Send the work of items the feeder has just claimed, in order; their steps read in one query (a first
    wave of C submits waits on this loop)."""
    steps = runtime.ledger().steps_of_items(item_ids)
    for item_id in item_ids:
        item_canvas(item_id, steps[item_id]).apply_async()
