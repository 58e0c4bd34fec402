"""Webhook deliveries: which job ends are announced, when, where, in which shape and with which faults.

A job created with a ``webhookUrl`` is announced once when it ends (ready, available, failed, or
interrupted through the API), ``webhook_delay`` (+ up to ``webhook_delay_jitter``) seconds after its end.
Its faults are rolled from the simulator's seeded fault randomness when the delivery is planned (at
create, or at the interruption), so a seed replays the same faults for the same sequence of requests:

- lost (``webhook_lost_rate``): nothing is sent; counted and recorded as lost;
- wrong token (``webhook_wrong_token_rate``): sent to the same URL with its last non-empty path segment
  (the receiver's token) replaced by a random one of the same length and alphabet (hex stays hex);
  the right URL gets nothing for that job. A URL without a path segment cannot be mistaken;
- duplicate (``webhook_duplicate_rate``): the same body to the same URL again :data:`DUPLICATE_AFTER`
  seconds after the first;
- shape (``webhook_body``): the job object as ``GET`` answers it, or ``{"event": "<kind>.<status>",
  "data": <that object>}``; ``mixed`` picks one per delivery (a duplicate keeps its first's shape).

An interrupted job's planned finish delivery goes stale (its job's end moved) and a new delivery is
planned at the interruption instead. Jobs that never finish plan none; a job forgotten (deleted, evicted,
or a reset) before its delivery is due is not announced.

This module holds the plan and the time-ordered queue (kept under the simulator's lock);
:mod:`letzai.sim.webhook_sender` renders the bodies and POSTs them.
"""

from __future__ import annotations

import heapq
import random
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from letzai.sim.config import SimConfig
from letzai.sim.jobs import Job

#: The body shapes a delivery can take.
SHAPES = ("object", "event")
#: Seconds between a delivery and its duplicate.
DUPLICATE_AFTER = 0.2
_HEX = frozenset("0123456789abcdef")
_TOKEN_CHARS = string.ascii_letters + string.digits + "-_"


@dataclass(slots=True)
class Delivery:
    """One planned announcement of a job's end.

    Attributes:
        job_id, kind: the job announced.
        url: the job's ``webhookUrl``; ``target`` where it is sent (``url``, or with a wrong token).
        shape: ``object`` or ``event``.
        lost, duplicate: its rolled faults.
        ends_at: the job end (monotonic) it announces; stale once the job's end has moved.
        copy: 1 for the delivery, 2 for its duplicate.
        body: the encoded body, rendered when the first copy goes out and reused by the duplicate;
            ``status`` the job status in it.
        generation: the queue generation it was planned in (a reset starts a new one).
    """

    job_id: str
    kind: str
    url: str
    target: str
    shape: str
    lost: bool
    duplicate: bool
    ends_at: float
    copy: int = 1
    body: bytes = b""
    status: str = ""
    generation: int = 0

    @property
    def url_ok(self) -> bool:
        """Whether it goes to the job's own URL (the right token)."""
        return self.target == self.url


def _roll(rng: random.Random, rate: float) -> bool:
    """True with probability ``rate``; draws nothing at rate 0, as ``SimState.roll`` does."""
    return rate > 0 and rng.random() < rate


def plan_delivery(rng: random.Random, config: SimConfig, job: Job, url: str) -> tuple[float, Delivery]:
    """``(due time, delivery)`` announcing the current end of ``job`` (which must have one) at ``url``."""
    ends_at = job.end_time
    if ends_at is None:
        raise ValueError(f"job {job.id} never ends; nothing to announce")
    lost = _roll(rng, config.webhook_lost_rate)
    wrong = _roll(rng, config.webhook_wrong_token_rate)
    duplicate = _roll(rng, config.webhook_duplicate_rate)
    shape = rng.choice(SHAPES) if config.webhook_body == "mixed" else config.webhook_body
    delay = config.webhook_delay
    if config.webhook_delay_jitter > 0:
        delay += rng.uniform(0, config.webhook_delay_jitter)
    target = wrong_token(url, rng) if wrong else url
    delivery = Delivery(job.id, job.kind, url, target, shape, lost, duplicate, ends_at)
    return ends_at + delay, delivery


def wrong_token(url: str, rng: random.Random) -> str:
    """``url`` with its last non-empty path segment replaced by a different one of the same length.

    The new token uses lowercase hex when the old one does, so a receiver that checks the token's format
    before looking it up still has to look it up. A URL without a path segment is returned unchanged.
    """
    parts = urlsplit(url)
    segments = parts.path.split("/")
    index = next((i for i in range(len(segments) - 1, -1, -1) if segments[i]), None)
    if index is None:
        return url
    token = segments[index]
    alphabet = "0123456789abcdef" if set(token) <= _HEX else _TOKEN_CHARS
    fake = token
    while fake == token:
        fake = "".join(rng.choice(alphabet) for _ in token)
    segments[index] = fake
    return urlunsplit(parts._replace(path="/".join(segments)))


def shaped(shape: str, kind: str, obj: dict[str, object]) -> dict[str, object]:
    """The body of one delivery: ``obj`` itself, or the ``{event, data}`` envelope around it."""
    if shape == "event":
        return {"event": f"{kind}.{obj.get('status')}", "data": obj}
    return obj


class DeliveryQueue:
    """Planned deliveries ordered by due time, under the simulator's lock (its condition wakes the sender).

    Bounded: when it holds ``2 * cap`` entries, those of forgotten or stale jobs are purged (a live job
    has at most one pending, and the simulator keeps at most ``cap`` = ``max_jobs`` jobs), so a burst of
    evicted jobs cannot grow it without end and a purge happens at most once per ``cap`` pushes.
    """

    def __init__(self, lock: threading.RLock) -> None:
        self.cond = threading.Condition(lock)
        self.heap: list[tuple[float, int, Delivery]] = []
        self.seq = 0
        self.generation = 0
        self.stopped = False

    def __len__(self) -> int:
        return len(self.heap)

    def push(self, due: float, delivery: Delivery, current: Callable[[Delivery], bool], cap: int) -> None:
        """Queue ``delivery`` for ``due`` (monotonic); ``current`` tells whether a queued one still counts."""
        with self.cond:
            if len(self.heap) >= 2 * cap:
                self.heap = [entry for entry in self.heap if current(entry[2])]
                heapq.heapify(self.heap)
            self.seq += 1
            delivery.generation = self.generation
            heapq.heappush(self.heap, (due, self.seq, delivery))
            if self.heap[0][2] is delivery:
                self.cond.notify()

    def clear(self) -> None:
        """Forget every pending delivery; those already taken see their generation is over."""
        with self.cond:
            self.heap = []
            self.generation += 1

    def current_generation(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` was planned since the last :meth:`clear`."""
        return delivery.generation == self.generation

    def take_due(self) -> Delivery | None:
        """Block until a delivery is due and return it; None once :meth:`stop` was called."""
        with self.cond:
            while not self.stopped:
                if not self.heap:
                    self.cond.wait()
                    continue
                wait = self.heap[0][0] - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                return heapq.heappop(self.heap)[2]
            return None

    def stop(self) -> None:
        """Wake and release the thread waiting in :meth:`take_due`."""
        with self.cond:
            self.stopped = True
            self.cond.notify_all()
