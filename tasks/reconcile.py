"""The periodic reconciler: a lost message only delays work.

Run by beat every ``LETZFLOW_RECONCILE_EVERY`` seconds. It
- re-syncs the in-flight slots with the ledger (a dead worker's slots come back; a wiped Redis is refilled);
- re-enqueues items with a step nobody touched in time (overdue next poll, or past its deadline);
- settles items whose steps all ended but whose fan-in message was lost;
- restarts a batch's feeder that stopped, and finalizes batches whose finalizer was lost.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from storage.models import as_utc, utcnow
from tasks import runtime

log = logging.getLogger(__name__)

#: Seconds a just-granted in-flight slot survives a resync before its step shows up in the ledger.
FRESH_SLOT = 60.0


def grace() -> timedelta:
    """How overdue a step must be before its item is re-enqueued (several reconciler periods)."""
    return timedelta(seconds=max(10.0, 3 * runtime.settings().letzflow_reconcile_every))


def reconcile() -> dict[str, int]:
    """One pass; returns what it did, by kind."""
    from tasks.batch import check_batch_done, finish
    from tasks.definitions import feed_batch, finalize_batch
    from tasks.pipelines import enqueue_item

    ledger = runtime.ledger()
    now = utcnow()
    done = {"slots": 0, "rekicked": 0, "settled": 0, "feeders": 0, "finalizers": 0}

    inflight = ledger.inflight_steps()
    runtime.inflight().resync((s.id for s in inflight if s.id is not None), fresh=FRESH_SLOT)
    done["slots"] = len(inflight)

    for item in ledger.stalled_items(now, grace()):
        assert item.id is not None
        log.warning(
            "reconciler: item %s of batch %s stalled; re-enqueueing its remaining steps",
            item.key,
            item.batch_id,
        )
        enqueue_item(item.id)
        done["rekicked"] += 1

    for item_id in ledger.unsettled_finished_items():
        if finish(item_id):
            done["settled"] += 1

    for batch in ledger.batches_in(("running",)):
        if batch.feeder_next_at is not None and as_utc(batch.feeder_next_at) < now:
            feed_batch.apply_async((batch.id,))
            done["feeders"] += 1
        elif check_batch_done(batch.id):
            done["finalizers"] += 1
    for batch in ledger.batches_in(("finalizing",)):
        if batch.finished_at is None:
            finalize_batch.apply_async((batch.id,))
            done["finalizers"] += 1
    return done
