"""Sends the simulator's webhooks: one dispatcher thread and a small pool of sender threads.

The dispatcher sleeps on the delivery queue's condition until the earliest delivery is due (no polling,
no thread per job), renders its body under the simulator's lock with the same function ``GET`` uses, and
hands it to the pool through a bounded outbox. A sender POSTs it with a short timeout; a refused
connection, a timeout or a non-2xx answer is counted and recorded, never raised, so a slow or dead receiver
only occupies the senders busy with it. Deliveries wait in the queue (bounded, see
:class:`letzai.sim.webhooks.DeliveryQueue`) while every sender is busy, and then go out late.

A reset during a POST is respected: the answer of a delivery planned before the reset is not counted.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import threading
import time
from typing import Any

import requests

from letzai.sim.routes import job_object
from letzai.sim.state import SimState
from letzai.sim.webhooks import DUPLICATE_AFTER, Delivery, shaped

#: Sender threads (POSTs in flight at once).
SENDERS = 8
#: Seconds one POST may take (connect and read each).
TIMEOUT = 5.0
_HEADERS = {"Content-Type": "application/json", "User-Agent": "letzai-sim/1.0 (webhooks)"}


class WebhookSender:
    """The threads that deliver ``sim``'s webhooks; :meth:`start` them with the server, :meth:`stop` after."""

    def __init__(
        self, sim: SimState, senders: int = SENDERS, timeout: float = TIMEOUT, name: str = "letzai-sim"
    ) -> None:
        self.sim = sim
        self.timeout = timeout
        self.stopping = threading.Event()
        self.outbox: queue.Queue[Delivery | None] = queue.Queue(maxsize=senders)
        self.dispatcher = threading.Thread(target=self._dispatch, name=f"{name}:webhooks", daemon=True)
        self.senders = [
            threading.Thread(target=self._send_loop, name=f"{name}:webhook-{n}", daemon=True)
            for n in range(senders)
        ]

    def start(self) -> None:
        """Start the dispatcher and the senders."""
        self.dispatcher.start()
        for thread in self.senders:
            thread.start()

    def stop(self, wait: float = 1.0) -> None:
        """Stop all threads, dropping what is not sent yet; waits at most ``wait`` s for POSTs in flight
        (the threads are daemons, so a hung receiver cannot keep the process alive)."""
        self.stopping.set()
        self.sim.webhooks.stop()
        deadline = time.monotonic() + wait
        self.dispatcher.join(timeout=wait)
        while True:
            try:
                self.outbox.get_nowait()
            except queue.Empty:
                break
        for _ in self.senders:
            try:
                self.outbox.put_nowait(None)
            except queue.Full:
                break
        for thread in self.senders:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def _dispatch(self) -> None:
        while True:
            delivery = self.sim.webhooks.take_due()
            if delivery is None:
                return
            if self._prepare(delivery):
                self._hand_over(delivery)

    def _prepare(self, delivery: Delivery) -> bool:
        """Render a due delivery's body (or drop it as lost or stale); True when it is to be POSTed."""
        sim = self.sim
        with sim.lock:
            if not sim.webhook_current(delivery):
                return False
            if delivery.copy == 2:
                return True
            job = sim.jobs[delivery.job_id]
            now = time.monotonic()
            if not job.finished(now):
                # Due at created + duration, but the job's own clock (now - created) can be a rounding
                # error short of its duration: try again a moment later.
                sim.webhooks.push(now + 0.001, delivery, sim.webhook_current, sim.config.max_jobs)
                return False
            delivery.status = job.status(now)[0]
            if delivery.lost:
                sim.counters.webhooks["lost"] += 1
                _record(sim, delivery, now, None, "lost")
                return False
            body = shaped(delivery.shape, job.kind, job_object(sim, job, job.base, now))
            delivery.body = json.dumps(body, separators=(",", ":")).encode()
            if not delivery.url_ok:
                sim.counters.webhooks["wrong_token"] += 1
            if delivery.duplicate:
                copy = dataclasses.replace(delivery, copy=2)
                sim.webhooks.push(now + DUPLICATE_AFTER, copy, sim.webhook_current, sim.config.max_jobs)
            return True

    def _hand_over(self, delivery: Delivery) -> None:
        """Put ``delivery`` in the outbox, waiting while every sender is busy (unless stopping)."""
        while not self.stopping.is_set():
            try:
                self.outbox.put(delivery, timeout=0.2)
                return
            except queue.Full:
                continue

    def _send_loop(self) -> None:
        with requests.Session() as session:
            session.trust_env = False  # a proxy from the environment must not see loopback webhooks
            while True:
                delivery = self.outbox.get()
                if delivery is None or self.stopping.is_set():
                    return
                self._post(session, delivery)

    def _post(self, session: requests.Session, delivery: Delivery) -> None:
        sim = self.sim
        with sim.lock:
            if not sim.webhooks.current_generation(delivery):
                return
            sim.counters.webhooks["sent"] += 1
            if delivery.copy == 2:
                sim.counters.webhooks["duplicated"] += 1
        sent = time.monotonic()
        code: int | None = None
        error: str | None = None
        try:
            answer = session.post(
                delivery.target,
                data=delivery.body,
                headers=_HEADERS,
                timeout=self.timeout,
                allow_redirects=False,
            )
            code = answer.status_code
        except Exception as exc:  # any receiver failure is the receiver's: count it, keep the thread
            error = f"{type(exc).__name__}: {exc}"[:200]
        with sim.lock:
            if not sim.webhooks.current_generation(delivery):
                return
            delivered = code is not None and 200 <= code < 300
            sim.counters.webhooks["delivered" if delivered else "failed"] += 1
            if code is not None and not delivered:
                error = f"HTTP {code}"
            _record(sim, delivery, sent, code, error)


def _record(sim: SimState, delivery: Delivery, at: float, code: int | None, error: str | None) -> None:
    """Append one row to the webhook log (the caller holds the lock)."""
    row: dict[str, Any] = {
        "job_id": delivery.job_id,
        "kind": delivery.kind,
        "status": delivery.status,
        "url_ok": delivery.url_ok,
        "url": delivery.target,
        "shape": delivery.shape,
        "copy": delivery.copy,
        "lost": delivery.lost,
        "code": code,
        "error": error,
        "ended_mono": round(delivery.ends_at, 4),
        "sent_mono": round(at, 4),
    }
    sim.counters.webhook_log.append(row)
