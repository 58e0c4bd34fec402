"""Global limits shared by every worker on every machine, kept in Redis.

- :class:`InflightLimiter`: at most ``max_inflight`` LetzAI jobs between submission and a terminal state.
  Slots are leases (a sorted set scored by expiry): a worker that dies holding one loses it when the lease
  runs out, and the reconciler re-syncs the set from the ledger.
- :class:`RateLimiter`: a token bucket on API requests per second.

Celery's own ``rate_limit`` is per worker, so neither can use it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis

from storage.models import Batch
from tasks.limits_lua import ACQUIRE, FORGET, PARK, RELEASE, SWEEP

INFLIGHT_KEY = "letzflow:inflight"
WAITING_KEY = "letzflow:inflight:waiting"
#: When each held slot was granted (a sorted set scored by that time).
SINCE_KEY = "letzflow:inflight:since"
#: The mean time a slot is held, grant to release (a hash, field ``mean``): how fast a line moves.
HOLD_KEY = "letzflow:inflight:hold"
#: A waiter trusts the measured slot time up to this multiple of the learned first-look time.
HOLD_BOUND = 2.0
#: When each held slot is expected to be released (a sorted set scored by that time): the time of the look
#: expected to find its job done. A waiter at place k in line asks again at the k-th earliest of them.
ENDS_KEY = "letzflow:inflight:ends"
#: Seconds after a predicted release a waiter asks (the releasing look has to run first).
ENDS_MARGIN = 0.05
#: A predicted release this many seconds past is stale (its step's look was lost): no longer counted.
ENDS_STALE = 30.0
TOKENS_KEY = "letzflow:ratelimit"
SEEN_KEY = "letzflow:inflight:seen"
STEP_BATCH_KEY = "letzflow:inflight:step-batch"
LANES_KEY = "letzflow:lanes"
SERVED_KEY = "letzflow:lanes:served"
PER_BATCH_KEY = "letzflow:inflight:per-batch"
#: Refused submitters waiting for a hand-over (hash step → message) and their fallback times (zset).
PARKED_KEY = "letzflow:inflight:parked"
PARKED_DUE_KEY = "letzflow:inflight:parked-due"
#: Every script's keys, in the order :mod:`tasks.limits_lua` documents.
KEYS = [
    INFLIGHT_KEY,
    WAITING_KEY,
    SINCE_KEY,
    HOLD_KEY,
    SEEN_KEY,
    STEP_BATCH_KEY,
    LANES_KEY,
    SERVED_KEY,
    PER_BATCH_KEY,
    ENDS_KEY,
    PARKED_KEY,
    PARKED_DUE_KEY,
]


@dataclass(frozen=True)
class Lane:
    """Where a step's batch stands for free slots: its priority (higher first), its weight within its
    priority (share of slots while backlogged), and its own cap (0: none)."""

    batch_id: str = "_"
    priority: int = 5
    weight: float = 1.0
    max_inflight: int = 0


DEFAULT_LANE = Lane()


def lane_of(batch: Batch) -> Lane:
    """The lane of ``batch``'s steps."""
    return Lane(batch.id, batch.priority, batch.weight, batch.max_inflight or 0)


_TOKEN = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + (now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('EXPIRE', KEYS[1], 60)
return tostring(wait)
"""


class InflightLimiter:
    """A cluster-wide cap on LetzAI jobs in flight.

    Args:
        client: a Redis client.
        max_inflight: the cap (``LETZAI_MAX_INFLIGHT``).
        lease: seconds a slot is held without a refresh before it is considered abandoned.
        on_handover: publishes the message of a parked waiter a freed slot was handed to (:meth:`park`).
    """

    def __init__(
        self,
        client: redis.Redis,
        max_inflight: int,
        lease: float = 600.0,
        on_handover: Callable[[str], None] | None = None,
    ) -> None:
        self.redis = client
        self.max_inflight = max_inflight
        self.lease = lease
        self.on_handover = on_handover
        self._acquire = client.register_script(ACQUIRE)
        self._release = client.register_script(RELEASE)
        self._park = client.register_script(PARK)
        self._sweep = client.register_script(SWEEP)
        self._forget = client.register_script(FORGET)

    def _ask(self, step_id: int, lane: Lane = DEFAULT_LANE) -> tuple[int, float | None, float | None]:
        """``(0, None, None)`` when granted, else ``(place in line k, mean seconds a slot is held, when the
        k-th earliest predicted release is)``, each None when not known."""
        result = self._acquire(
            keys=KEYS,
            args=[
                time.time(),
                step_id,
                self.max_inflight,
                self.lease,
                lane.batch_id,
                lane.priority,
                lane.weight,
                lane.max_inflight,
                ENDS_STALE,
            ],
        )
        if not isinstance(result, list):
            return 0, None, None
        mean, end = (r.decode() if isinstance(r, bytes) else str(r) for r in result[1:3])
        return int(result[0]), float(mean) if mean else None, float(end) if end else None

    def acquire(self, step_id: int, lane: Lane = DEFAULT_LANE) -> int:
        """Take a slot for ``step_id``. Returns 0 when granted (or already held), else its place in line.

        Waiters keep the place of their first refusal (first come, first asked) as long as they ask again
        within a minute (or stay parked); lanes decide between batches (:mod:`tasks.limits_lua`).
        """
        return self._ask(step_id, lane)[0]

    def acquire_or_wait(self, step_id: int, expected_job_seconds: float, lane: Lane = DEFAULT_LANE) -> float:
        """Take a slot for ``step_id``: 0 when granted, else the seconds to wait before asking again.

        ``expected_job_seconds``: the learned first-look time of such jobs (a low quantile of their
        durations). The measured slot time is trusted up to :data:`HOLD_BOUND` times that: after a cold
        start (first looks at the 15 s default) the mean still holds those long slots for a while, and
        waiters told to come back that late would leave freed slots idle. Asking early costs a refused ask;
        asking late costs a slot.
        """
        rank, hold, end = self._ask(step_id, lane)
        if not rank:
            return 0.0
        if end is not None:
            # the k-th waiter gets the k-th release; a release already overdue is near (its look is running)
            return min(15.0, max(ENDS_MARGIN, end - time.time() + ENDS_MARGIN))
        bound = HOLD_BOUND * expected_job_seconds
        return self.wait_hint(rank, min(hold, bound) if hold else expected_job_seconds)

    def wait_hint(self, waiting: int, slot_seconds: float) -> float:
        """Seconds a refused submitter at place ``waiting`` in line should wait before asking again.

        ``slot_seconds``: how long a slot is held, grant to release (measured by :meth:`release`; the
        expected job time until some were). Slots free up about every ``slot_seconds / max_inflight``
        seconds; the waiter at place k asks again about when k slots will have been freed, so a freed slot
        is taken promptly and each waiter asks once or twice, rather than every waiter polling on a clock.
        The expected job time alone is too short (a slot also covers the POST and the look that sees the
        job done): waiters then asked 2-3 times each. The rate at which slots were *taken* would feed back
        on itself (late askers slow it down, and it tells the next ones to come later still).
        """
        per_release = slot_seconds / max(1, self.max_inflight)
        delay = waiting * per_release
        return min(15.0, max(0.05, delay * random.uniform(0.9, 1.1)))

    def expect_release(self, step_id: int, at: float) -> None:
        """The slot of ``step_id`` is expected to be released at ``at`` (epoch seconds): when the look
        planned for its job is expected to find it done."""
        self.redis.zadd(ENDS_KEY, {str(step_id): at})

    def refresh(self, step_id: int, release_at: float | None = None) -> None:
        """Renew the lease of ``step_id``'s slot; ``release_at``: its next look (:meth:`expect_release`)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(INFLIGHT_KEY, {str(step_id): time.time() + self.lease}, xx=True)
        if release_at is not None:
            pipe.zadd(ENDS_KEY, {str(step_id): release_at})
        pipe.execute()

    def release(self, step_id: int) -> None:
        """Free the slot of ``step_id`` (its hold time, if it was held, goes into the mean) and hand it to
        the most deserving parked waiter, whose message is published at once."""
        self._hand_over(
            self._release(keys=KEYS, args=[str(step_id), time.time(), self.max_inflight, self.lease])
        )

    def park(self, step_id: int, message: str, fallback_at: float) -> None:
        """Keep a refused submitter's ``message`` (a serialized signature, due at once) until a freed slot
        is handed to it, or until ``fallback_at`` (epoch seconds), when a sweep sends it to ask again. A
        slot freed since the refusal is handed over now (perhaps to this very step)."""
        args: list[str | float] = [
            str(step_id),
            message,
            fallback_at,
            time.time(),
            self.max_inflight,
            self.lease,
        ]
        self._hand_over(self._park(keys=KEYS, args=args))

    def sweep(self, now: float | None = None, limit: int = 500) -> int:
        """A worker's timer: hand slots freed without a release (leases run out, a raised cap) to parked
        waiters, and send the parked waiters past their fallback time; how many messages were sent."""
        args = [time.time() if now is None else now, self.max_inflight, self.lease, limit]
        return self._hand_over(self._sweep(keys=KEYS, args=args))

    def parked(self) -> int:
        """How many refused submitters are parked."""
        return int(self.redis.hlen(PARKED_KEY))  # type: ignore[arg-type]

    def _hand_over(self, messages: list[bytes | str] | None) -> int:
        for raw in messages or []:
            message = raw.decode() if isinstance(raw, bytes) else str(raw)
            if self.on_handover is None:
                raise RuntimeError("a slot was handed to a parked waiter but nothing publishes it")
            self.on_handover(message)
        return len(messages or [])

    def forget_batch(self, batch_id: str) -> None:
        """A batch paused, stopped or cancelled: its waiters leave the line and its share goes back now."""
        self._forget(keys=KEYS, args=[batch_id])

    def held_by_batch(self) -> dict[str, int]:
        """Slots held per batch (what ``letzflow status`` shows as each batch's share of the cap)."""
        raw = self.redis.hgetall(PER_BATCH_KEY)
        out = {}
        for k, v in raw.items():  # type: ignore[union-attr]
            key = k.decode() if isinstance(k, bytes) else str(k)
            if int(v) > 0:
                out[key] = int(v)
        return out

    def holders(self) -> set[str]:
        return {
            m.decode() if isinstance(m, bytes) else str(m) for m in self.redis.zrange(INFLIGHT_KEY, 0, -1)
        }

    def resync(self, step_ids: Iterable[int], fresh: float = 0.0) -> None:
        """Make the held slots the ledger's in-flight steps (after a crash or a Redis loss).

        A slot granted in the last ``fresh`` seconds is kept even if its step is not in ``step_ids``: it
        is between :meth:`acquire` and the ledger's ``planned → submitting``, and dropping it would let
        another step take the same slot (more jobs in flight than the cap). Slots resync adds itself do
        not count as fresh, so a step released while the ledger was being read loses its slot next time.
        """
        wanted = {str(s) for s in step_ids}
        now = time.time()
        recent_floor = now + self.lease - fresh
        recent = {
            m.decode() if isinstance(m, bytes) else str(m)
            for m in self.redis.zrangebyscore(INFLIGHT_KEY, recent_floor, "+inf")
        }
        stale = self.holders() - wanted - recent
        pipe = self.redis.pipeline()
        if stale:
            pipe.zrem(INFLIGHT_KEY, *stale)
        if wanted:
            expiry = recent_floor - 1
            pipe.zadd(INFLIGHT_KEY, {s: expiry for s in wanted})
        pipe.execute()
        self._recount(wanted | recent)

    def _recount(self, held: set[str]) -> None:
        """Slots per batch from the held set (a crash or a Redis loss leaves the counters off)."""
        counts: dict[str, int] = {}
        if held:
            for batch in self.redis.hmget(STEP_BATCH_KEY, sorted(held)):
                if batch is not None:
                    key = batch.decode() if isinstance(batch, bytes) else str(batch)
                    counts[key] = counts.get(key, 0) + 1
        pipe = self.redis.pipeline()
        pipe.delete(PER_BATCH_KEY)
        if counts:
            pipe.hset(PER_BATCH_KEY, mapping=dict(counts))  # type: ignore[arg-type]
        pipe.execute()


class RateLimiter:
    """A token bucket shared by all workers: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(self, client: redis.Redis, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._take = client.register_script(_TOKEN)

    def take(self) -> float:
        """Take a token; returns 0 when granted, else the seconds to wait before asking again."""
        return float(self._take(keys=[TOKENS_KEY], args=[self.rate, self.burst, time.time()]))

    def wait(self, max_wait: float = 5.0) -> bool:
        """Block up to ``max_wait`` seconds for a token (short waits only); False if none came."""
        deadline = time.monotonic() + max_wait
        while True:
            delay = self.take()
            if delay <= 0:
                return True
            if time.monotonic() + delay > deadline:
                return False
            time.sleep(delay)
