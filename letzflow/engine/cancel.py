"""Cancelling a batch: no new POSTs from now on, jobs in flight interrupted, every open step and item ended.

Nothing is revoked on the broker: a queued submit or poll of the batch finds it ``cancelled`` and cancels
its step without a call to LetzAI; a step whose job had already finished (``ready``) is still copied.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from letzflow.engine.deps import Deps
from letzflow.engine.stopping import CANCELLABLE, cancel_step


def cancel_batch(
    deps: Deps, batch_id: str, settle_seconds: float = 10.0, *, sleep: Callable[[float], None] = time.sleep
) -> dict[str, int]:
    """Cancel a batch; answers how many image jobs were interrupted and how many steps cancelled.

    Steps caught mid-POST (``submitting``) are given ``settle_seconds`` to record their job, so that job
    is interrupted too (checked every 0.2 s, waiting with ``sleep``).
    """
    ledger = deps.ledger
    ledger.set_batch_state(
        batch_id, ("running", "paused", "stopped", "creating"), "cancelled", "cancelled by the user"
    )
    deps.inflight.forget_batch(batch_id)
    deadline = time.monotonic() + settle_seconds
    while ledger.steps_in(batch_id, ("submitting",)) and time.monotonic() < deadline:
        sleep(0.2)
    counts = {"interrupted": 0, "cancelled": 0}
    for step in ledger.steps_in(batch_id, CANCELLABLE):
        if step.state in ("submitted", "running") and step.remote_kind == "image":
            counts["interrupted"] += 1
        if cancel_step(deps, step):
            counts["cancelled"] += 1
    for item in ledger.items(batch_id, ("pending", "queued")):
        assert item.id is not None
        if not ledger.settle_item(item.id):
            ledger.set_item_state(
                item.id, ("pending",), "cancelled", error="cancelled by the user", finished_at=deps.now()
            )
    return counts
