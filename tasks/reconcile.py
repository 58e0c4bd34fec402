"""The periodic reconciler: a lost message only delays work.

Offered by every worker every ``LETZFLOW_RECONCILE_EVERY`` seconds (one pass a period, one at a time:
:mod:`tasks.liveness`), and once by each worker when it starts. It
- finds workers that stopped beating: for a while after, due work is re-kicked without the usual grace,
  since the dead worker's messages wait unacknowledged in Redis until the visibility timeout;
- re-syncs the in-flight slots with the ledger (a dead worker's slots come back; a wiped Redis is refilled);
- re-enqueues items with a step nobody touched in time (overdue next poll, or past its deadline);
- settles items whose steps all ended but whose fan-in message was lost;
- restarts a batch's feeder that stopped, and finalizes batches whose finalizer was lost.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from storage.models import as_utc, utcnow
from tasks import messages, runtime
from tasks.batch import check_batch_done, finish
from tasks.liveness import Liveness
from tasks.pipelines import enqueue_item

log = logging.getLogger(__name__)

#: Seconds a just-granted in-flight slot survives a resync before its step shows up in the ledger.
FRESH_SLOT = 60.0


def grace() -> timedelta:
    """How overdue a step must be before its item is re-enqueued (several reconciler periods)."""
    return timedelta(seconds=max(10.0, 3 * runtime.settings().letzflow_reconcile_every))


#: A pass holds its lease this long (s), renewed as it goes (:class:`_Lease`): one that stops renewing (its
#: worker died, or Redis went away under it and the release failed) blocks the next passes this long at most.
LEASE = 15.0
#: After a worker death: a step whose planned look is this late (s) is taken as held by the dead worker.
CRASH_DUE = timedelta(seconds=2)


def reconcile() -> dict[str, int]:
    """One pass, unless another is running; returns what it did, by kind (``lease_lost``: the pass stopped
    when its lease had run out and another pass may hold it)."""
    live = runtime.liveness()
    token = live.take_lease(LEASE)
    if token is None:
        return {"skipped": 1}
    try:
        return _reconcile(live, _Lease(live, token))
    except LeaseLost:
        log.warning("reconciler: this pass stalled past its lease; it stops, the next pass goes on")
        return {"lease_lost": 1}
    finally:
        live.release_lease(token)


class LeaseLost(Exception):
    """The pass's lease ran out before it renewed it: another pass may be running."""


class _Lease:
    """The pass's lease, renewed when a third of it has gone by (called between units of work)."""

    def __init__(self, live: Liveness, token: str) -> None:
        self.live, self.token, self.at = live, token, time.monotonic()

    def keep(self) -> None:
        """Renew the lease if due. Raises :class:`LeaseLost` when it ran out meanwhile."""
        if time.monotonic() - self.at >= LEASE / 3:
            if not self.live.renew_lease(self.token, LEASE):
                raise LeaseLost()
            self.at = time.monotonic()


def _reconcile(live: Liveness, lease: _Lease) -> dict[str, int]:
    ledger = runtime.ledger()
    now = utcnow()
    done = {"slots": 0, "rekicked": 0, "settled": 0, "feeders": 0, "finalizers": 0, "dead_workers": 0}
    wall = now.timestamp()
    dead = live.claim_dead(wall)
    if dead:
        log.warning("reconciler: worker(s) %s stopped beating; re-kicking what they held", ", ".join(dead))
        done["dead_workers"] = len(dead)
    lost = live.data_lost() and bool(ledger.batches_in(("running",)))
    if lost:
        log.warning(
            "reconciler: Redis holds none of letzflow's keys while a batch runs (emptied, or new); "
            "re-kicking open work"
        )
        dead = dead or ["redis"]
    if dead:
        live.open_crash_window(wall)
    due_slack = CRASH_DUE if live.in_crash_window(wall) else None
    limit = 5000 if dead else 500

    inflight = ledger.inflight_steps()
    runtime.inflight().resync((s.id for s in inflight if s.id is not None), fresh=FRESH_SLOT)
    done["slots"] = len(inflight)

    for item in ledger.stalled_items(
        now, grace(), limit, due_slack=due_slack, crash_sweep=bool(dead), all_kicks_lost=lost
    ):
        assert item.id is not None
        lease.keep()
        log.warning(
            "reconciler: item %s of batch %s stalled; re-enqueueing its remaining steps",
            item.key,
            item.batch_id,
        )
        enqueue_item(item.id)
        done["rekicked"] += 1

    lease.keep()
    for item_id in ledger.unsettled_finished_items():
        lease.keep()
        if finish(item_id):
            done["settled"] += 1

    for batch in ledger.batches_in(("running",)):
        lease.keep()
        if batch.feeder_next_at is not None and as_utc(batch.feeder_next_at) < now:
            messages.send(messages.FEED_BATCH, batch.id)
            done["feeders"] += 1
        elif check_batch_done(batch.id):
            done["finalizers"] += 1
    for batch in ledger.batches_in(("finalizing",)):
        if batch.finished_at is None:
            messages.send(messages.FINALIZE_BATCH, batch.id)
            done["finalizers"] += 1
    return done
