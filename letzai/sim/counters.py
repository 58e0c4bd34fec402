"""What the simulator counts, for tests and benchmarks (``GET /_sim/counters``).

The snapshot's shape::

    {"requests": n,                                   every HTTP request (admin ones excepted)
     "posts": {"/images": {"attempted": n, "created": n}, ...},   created = jobs actually billed
     "jobs_created": {"image": n, ...}, "jobs_created_total": n, "credits_left": n | null,
     "polls": {"total": n, "jobs": n, "per_job": x, "max_per_job": n},
     "polls_by_job": {"<id>": n, ...},                omitted with ?by_job=0
     "list_calls": {"/images": n, ...}, "list_calls_total": n,
     "media": {"downloads": n, "bytes": n, "uploads": n, "upload_bytes": n},
     "interrupts": n, "concurrent_now": n, "max_concurrent": n,
     "injected": {"rate_limit": n, "error_5xx": n, "lost": n, "reset": n, "slow": n, "media_error": n},
     "responses": {"201": n, "429": n, ...},         every API answer by status
     "webhooks_sent": n,          webhook POSTs made (duplicates included)
     "webhooks_delivered": n,     answered 2xx
     "webhooks_failed": n,        refused, timed out, or answered anything but 2xx
     "webhooks_lost": n, "webhooks_duplicated": n, "webhooks_wrong_token": n,   injected faults
     "webhooks_pending": n}       queued deliveries (stale ones included until they are due)

Every webhook POST (and every lost delivery) is also recorded in ``webhook_log`` (the last
:data:`WEBHOOK_LOG_SIZE`), served by ``GET /_sim/webhooks``.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

INJECTED = ("rate_limit", "error_5xx", "lost", "reset", "slow", "media_error")
WEBHOOK_COUNTS = ("sent", "delivered", "failed", "lost", "duplicated", "wrong_token")
#: Webhook records kept (the oldest are dropped beyond).
WEBHOOK_LOG_SIZE = 20_000


class Counters:
    """Plain counters; the caller holds the simulator's lock."""

    def __init__(self) -> None:
        self.requests = 0
        self.posts_attempted: Counter[str] = Counter()
        self.posts_created: Counter[str] = Counter()
        self.jobs_created: Counter[str] = Counter()
        self.polls: Counter[str] = Counter()
        self.polls_total = 0
        self.list_calls: Counter[str] = Counter()
        self.media_downloads = 0
        self.media_bytes = 0
        self.uploads = 0
        self.upload_bytes = 0
        self.interrupts = 0
        self.max_concurrent = 0
        self.injected: Counter[str] = Counter({name: 0 for name in INJECTED})
        self.responses: Counter[str] = Counter()
        self.webhooks: Counter[str] = Counter({name: 0 for name in WEBHOOK_COUNTS})
        self.webhook_log: deque[dict[str, Any]] = deque(maxlen=WEBHOOK_LOG_SIZE)

    def poll(self, job_id: str) -> None:
        """Count one ``GET /x/{id}``."""
        self.polls[job_id] += 1
        self.polls_total += 1

    def forget(self, job_id: str) -> None:
        """Drop a forgotten job's per-id count (the totals stay)."""
        self.polls.pop(job_id, None)

    def snapshot(
        self,
        *,
        concurrent_now: int,
        credits_left: int | None,
        webhooks_pending: int = 0,
        by_job: bool = True,
    ) -> dict[str, Any]:
        """The counters as a JSON-ready dict (shape in the module docstring)."""
        polled = len(self.polls)
        snapshot: dict[str, Any] = {
            "requests": self.requests,
            "posts": {
                path: {"attempted": self.posts_attempted[path], "created": self.posts_created[path]}
                for path in sorted(set(self.posts_attempted) | set(self.posts_created))
            },
            "jobs_created": dict(self.jobs_created),
            "jobs_created_total": sum(self.jobs_created.values()),
            "credits_left": credits_left,
            "polls": {
                "total": self.polls_total,
                "jobs": polled,
                "per_job": round(self.polls_total / polled, 3) if polled else 0.0,
                "max_per_job": max(self.polls.values(), default=0),
            },
            "list_calls": dict(self.list_calls),
            "list_calls_total": sum(self.list_calls.values()),
            "media": {
                "downloads": self.media_downloads,
                "bytes": self.media_bytes,
                "uploads": self.uploads,
                "upload_bytes": self.upload_bytes,
            },
            "interrupts": self.interrupts,
            "concurrent_now": concurrent_now,
            "max_concurrent": self.max_concurrent,
            "injected": dict(self.injected),
            "responses": dict(self.responses),
            **{f"webhooks_{name}": self.webhooks[name] for name in WEBHOOK_COUNTS},
            "webhooks_pending": webhooks_pending,
        }
        if by_job:
            snapshot["polls_by_job"] = dict(self.polls)
        return snapshot
