"""A schedule's firing: claimed once in the ledger, then its batch started (the task side of schedules).

:mod:`workers.schedules` loads schedule files into beat entries; each entry sends ``letzflow.run_schedule``
with the schedule's cron expression, and :func:`fire` maps the moment it runs to the cron time it stands
for, so every beat that fires one names the same (schedule, time) and only the first claim starts a batch.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

log = logging.getLogger(__name__)


def firing_time(cron: str | None, now: datetime) -> datetime:
    """The scheduled time a firing at ``now`` stands for: the cron's latest time at or before ``now``
    (the minute, without a cron). Every beat that fires it computes the same value."""
    if cron:
        from croniter import croniter

        start = now.replace(second=0, microsecond=0)
        if croniter.match(cron, start):
            return start
        return croniter(cron, now).get_prev(datetime).astimezone(UTC)  # type: ignore[no-any-return]
    return now.replace(second=0, microsecond=0)


def fire(
    name: str,
    spec_path: str,
    now: datetime | None = None,
    cron: str | None = None,
    reuse: bool = True,
    priority: int | None = None,
) -> str | None:
    """Start one scheduled batch, unless another beat already started this firing or the schedule's
    previous batch is still open. Returns its id.

    The firing is claimed first, in the ledger ((schedule, time) is unique), so any number of beats
    start it at most once.
    """
    from letzflow.spec import load_spec
    from tasks import runtime
    from tasks.batch import start_spec

    now = now or datetime.now(UTC)
    ledger = runtime.ledger()
    slot = firing_time(cron, now)
    if not ledger.claims.claim_firing(name, slot):
        log.warning("schedule %s: the firing of %s was already claimed; skipped", name, slot.isoformat())
        return None
    open_batches = [
        b for b in ledger.batches_in(("creating", "running", "finalizing", "paused")) if b.schedule == name
    ]
    if open_batches:
        log.warning(
            "schedule %s: batch %s is still %s; this firing is skipped",
            name,
            open_batches[0].id,
            open_batches[0].state,
        )
        return None
    stamp = slot.strftime("%Y%m%d-%H%M")
    spec = load_spec(spec_path)
    batch = start_spec(spec, name=f"{name}-{stamp}", schedule=name, fresh=not reuse, priority=priority)
    ledger.claims.record_firing(name, slot, batch.id)
    log.info("schedule %s: started batch %s", name, batch.id)
    return batch.id
