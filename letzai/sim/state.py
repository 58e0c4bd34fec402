"""The simulator's shared state: jobs, uploaded assets, credits, concurrency and counters, under one lock."""

from __future__ import annotations

import heapq
import os
import random
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from letzai.sim.config import JOB_KINDS, SimConfig
from letzai.sim.counters import Counters
from letzai.sim.jobs import Job, plan_job
from letzai.sim.replies import SimError, not_found, retry_after_header
from letzai.sim.webhooks import Delivery, DeliveryQueue, plan_delivery

#: Uploaded assets kept at most (bytes, all together); the oldest are dropped beyond.
ASSET_BUDGET = 256 * 1024 * 1024


@dataclass
class Asset:
    """A file announced by ``POST /user-assets`` and (once PUT) served at its ``imageUrl``."""

    token: str
    filename: str
    content_type: str
    signature: str = ""
    data: bytes | None = None


class SimState:
    """Everything the simulator remembers. Every method takes the lock; callers may take it too (RLock)."""

    def __init__(self, config: SimConfig) -> None:
        self.lock = threading.RLock()
        self.config = config
        self.webhooks = DeliveryQueue(self.lock)
        self.reset()

    def reset(self) -> None:
        """Forget every job, asset, count and pending webhook; restart the job counter and the seeded
        randomness."""
        with self.lock:
            self.webhooks.clear()
            self.seed = self.config.seed if self.config.seed is not None else int.from_bytes(os.urandom(6))
            self.fault_rng = random.Random(f"{self.seed}:faults")
            self.list_seq = 0
            self.seq = 0
            self.jobs: dict[str, Job] = {}
            self.by_kind: dict[str, dict[str, Job]] = {kind: {} for kind in JOB_KINDS}
            self.children: dict[str, tuple[str, int]] = {}
            self.assets: OrderedDict[str, Asset] = OrderedDict()
            self.asset_bytes = 0
            self.active: set[str] = set()
            self.finishing: list[tuple[float, str]] = []
            self.credits_left = self.config.credits
            self.counters = Counters()

    def configure(self, knobs: dict[str, Any]) -> SimConfig:
        """Apply knob values live; setting ``credits`` refills the account to that value.

        Raises:
            ValueError: an unknown knob or a bad value.
        """
        with self.lock:
            self.config = self.config.updated(knobs)
            if "credits" in knobs:
                self.credits_left = self.config.credits
            if "seed" in knobs and self.config.seed is not None:
                self.seed = self.config.seed
                self.fault_rng = random.Random(f"{self.seed}:faults")
            return self.config

    def roll(self, rate: float) -> bool:
        """True with probability ``rate`` (seeded fault randomness)."""
        if rate <= 0:
            return False
        with self.lock:
            return self.fault_rng.random() < rate

    def concurrent_now(self) -> int:
        """Unfinished jobs right now (finished ones are pruned first)."""
        with self.lock:
            now = time.monotonic()
            while self.finishing and self.finishing[0][0] <= now:
                self.active.discard(heapq.heappop(self.finishing)[1])
            return len(self.active)

    def create(self, kind: str, endpoint: str, params: dict[str, Any], **attrs: Any) -> Job:
        """Create and bill a job of ``kind`` (``attrs`` set Job fields such as width, height and request).

        Raises:
            SimError: 402 when the credits are spent, 429 when ``max_concurrent_jobs`` jobs are unfinished.
        """
        with self.lock:
            config = self.config
            if self.credits_left is not None and self.credits_left <= 0:
                raise SimError(402, "Insufficient credits. Please top up your credits or subscription.")
            cap = config.max_concurrent_jobs
            if cap is not None and self.concurrent_now() >= cap:
                raise SimError(
                    429, f"Too many concurrent jobs (limit {cap})", retry_after_header(config.retry_after)
                )
            self.seq += 1
            job = plan_job(kind, self.seq, self.seed, config, params)
            job.endpoint = endpoint
            for name, value in attrs.items():
                setattr(job, name, value)
            if kind == "image_edit":
                count = int(params.get("imageCompletionsCount") or 1)
                if config.edit_images_max is not None:
                    count = max(1, min(count, config.edit_images_max))
                for index in range(count):
                    child = str(uuid.uuid4())
                    job.children.append(child)
                    self.children[child] = (job.id, index)
            self.jobs[job.id] = job
            self.by_kind[kind][job.id] = job
            self.active.add(job.id)
            if job.finish_time is not None:
                heapq.heappush(self.finishing, (job.finish_time, job.id))
            if self.credits_left is not None:
                self.credits_left -= 1
            self.counters.posts_created[endpoint] += 1
            self.counters.jobs_created[kind] += 1
            self.counters.max_concurrent = max(self.counters.max_concurrent, len(self.active))
            self._evict()
            self._plan_webhook(job)
            return job

    def _plan_webhook(self, job: Job) -> None:
        """Queue the announcement of the job's end, if it asked for one and ends at all."""
        url = job.params.get("webhookUrl")
        if not isinstance(url, str) or not url or job.end_time is None:
            return
        due, delivery = plan_delivery(self.fault_rng, self.config, job, url)
        self.webhooks.push(due, delivery, self.webhook_current, self.config.max_jobs)

    def webhook_current(self, delivery: Delivery) -> bool:
        """Whether a queued delivery still announces its job's end (the job is known and ends then)."""
        job = self.jobs.get(delivery.job_id)
        return (
            job is not None
            and job.end_time == delivery.ends_at
            and self.webhooks.current_generation(delivery)
        )

    def _evict(self) -> None:
        while len(self.jobs) > self.config.max_jobs:
            oldest = next(iter(self.jobs))
            self.remove(oldest)

    def remove(self, job_id: str) -> None:
        """Forget a job (deleted, or evicted to bound memory); later GETs answer 404."""
        with self.lock:
            job = self.jobs.pop(job_id, None)
            if job is None:
                return
            self.by_kind[job.kind].pop(job_id, None)
            self.active.discard(job_id)
            self.counters.forget(job_id)
            for child in job.children:
                self.children.pop(child, None)

    def get(self, kind: str, job_id: str, what: str) -> Job:
        """The job ``job_id`` of ``kind``.

        Raises:
            SimError: 404 when unknown.
        """
        job = self.by_kind[kind].get(job_id)
        if job is None:
            raise not_found(what)
        return job

    def interrupt(self, job: Job) -> bool:
        """Interrupt a working job now; False when it has already finished.

        A job with a ``webhookUrl`` is announced at its interruption (faults rolled afresh); the delivery
        planned for its finish goes stale.
        """
        with self.lock:
            now = time.monotonic()
            phase, progress = job.state(now)
            if phase not in ("new", "working"):
                return False
            job.interrupted_at = now
            job.interrupted_progress = progress
            self.active.discard(job.id)
            self.counters.interrupts += 1
            self._plan_webhook(job)
            return True

    def new_asset(self, filename: str, content_type: str) -> Asset:
        """Announce an upload; its bytes arrive later with :meth:`store_asset`."""
        with self.lock:
            asset = Asset(secrets.token_urlsafe(12), filename, content_type, secrets.token_hex(16))
            self.assets[asset.token] = asset
            while len(self.assets) > 10_000:
                self._drop_asset()
            return asset

    def store_asset(self, asset: Asset, data: bytes, content_type: str | None) -> None:
        """Keep an uploaded file's bytes (dropping the oldest files beyond :data:`ASSET_BUDGET`)."""
        with self.lock:
            if asset.data is not None:
                self.asset_bytes -= len(asset.data)
            asset.data = data
            if content_type:
                asset.content_type = content_type
            self.asset_bytes += len(data)
            self.assets.move_to_end(asset.token)
            self.counters.uploads += 1
            self.counters.upload_bytes += len(data)
            while self.asset_bytes > ASSET_BUDGET and len(self.assets) > 1:
                self._drop_asset()

    def _drop_asset(self) -> None:
        _, dropped = self.assets.popitem(last=False)
        if dropped.data is not None:
            self.asset_bytes -= len(dropped.data)

    def next_list_rng(self) -> random.Random:
        """A seeded RNG for one list call's answer variant."""
        with self.lock:
            self.list_seq += 1
            return random.Random(f"{self.seed}:list:{self.list_seq}")

    def counters_snapshot(self, by_job: bool = True) -> dict[str, Any]:
        """The counters as JSON (see :mod:`letzai.sim.counters`)."""
        with self.lock:
            return self.counters.snapshot(
                concurrent_now=self.concurrent_now(),
                credits_left=self.credits_left,
                webhooks_pending=len(self.webhooks),
                by_job=by_job,
            )
