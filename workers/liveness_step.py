"""A worker bootstep: heartbeats, the reconciler offered from every worker (no beat needed), and the
sweep of parked messages: submitters waiting for a slot (:mod:`tasks.waiters`) and, with webhooks on,
looks whose webhooks were lost (:mod:`tasks.hooks`).

Each worker's timer beats into Redis and offers a reconciler pass every ``LETZFLOW_RECONCILE_EVERY``
seconds (the first offer of a period across all workers wins, see :mod:`tasks.liveness`); a worker also
enqueues one pass when it starts, so a worker started after a crash sweeps at once. The timer runs in the
worker's main process (the event loop of a prefork worker), so a busy pool does not delay it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from celery import bootsteps

log = logging.getLogger(__name__)

#: Seconds between heartbeats (well inside LETZFLOW_WORKER_DEAD_AFTER).
BEAT_EVERY = 2.0
#: Seconds between two warnings of one Redis outage (the timers below fire several times a second).
QUIET_FOR = 30.0
#: Seconds between sweeps for parked messages past their fallback time, and slots to hand over.
SWEEP_EVERY = 0.5


class Liveness(bootsteps.StartStopStep):
    """Beat, offer the reconciler, and leave the registry on a clean stop."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        super().__init__(worker, **kwargs)
        self.name = f"{getattr(worker, 'hostname', None) or socket.gethostname()}:{os.getpid()}"
        from tasks import runtime

        # before the pool forks: every task of this worker records it as the sender of its POSTs
        runtime.WORKER_NAME[0] = self.name
        self.trefs: list[Any] = []
        self.logged_at, self.failures = 0.0, 0

    def start(self, worker: Any) -> None:
        from tasks import runtime
        from tasks.definitions import offer_reconcile

        self._safely(lambda: runtime.liveness().beat(self.name, time.time()))
        self._safely(lambda: offer_reconcile(startup=True))
        self.trefs.append(worker.timer.call_repeatedly(BEAT_EVERY, self.tick, priority=10))
        self.hooks = bool(runtime.settings().letzflow_webhook_url)
        self.trefs.append(worker.timer.call_repeatedly(SWEEP_EVERY, self.sweep, priority=10))

    def sweep(self) -> None:
        """Hand freed slots to parked submitters and send the parked messages past their fallback time:
        waiters for a slot (tasks.waiters) and, with webhooks on, looks whose webhooks did not come."""
        from tasks import waiters
        from tasks.hooks import sweep_due

        self._safely(waiters.sweep)
        if self.hooks:
            self._safely(sweep_due)

    def tick(self) -> None:
        from tasks import runtime
        from tasks.definitions import offer_reconcile

        self._safely(lambda: runtime.liveness().beat(self.name, time.time()))
        self._safely(lambda: offer_reconcile())

    def stop(self, worker: Any) -> None:
        from tasks import runtime

        for tref in self.trefs:
            tref.cancel()
        self.trefs.clear()
        self._safely(lambda: runtime.liveness().leave(self.name))

    def _safely(self, action: Any) -> None:
        """Redis may be away (an outage): log, and try again at the next tick.

        The timers fire several times a second: an outage is logged when it starts, then at most every
        :data:`QUIET_FOR` seconds with the number of failures between, and its end once."""
        try:
            action()
        except Exception as exc:
            now = time.monotonic()
            self.failures += 1
            if now - self.logged_at >= QUIET_FOR:
                more = f" ({self.failures - 1} more failures since the last report)" if self.logged_at else ""
                log.warning("liveness: %s%s", exc, more)
                self.logged_at, self.failures = now, 0
        else:
            if self.logged_at:
                log.warning("liveness: Redis answers again")
                self.logged_at, self.failures = 0.0, 0
