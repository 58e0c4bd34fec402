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
from collections.abc import Iterable

import redis

INFLIGHT_KEY = "letzflow:inflight"
WAITING_KEY = "letzflow:inflight:waiting"
TOKENS_KEY = "letzflow:ratelimit"

_ACQUIRE = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 600)
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return -1
end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), ARGV[2])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return -1
end
redis.call('ZADD', KEYS[2], 'NX', now, ARGV[2])
return redis.call('ZRANK', KEYS[2], ARGV[2]) + 1
"""

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
    """

    def __init__(self, client: redis.Redis, max_inflight: int, lease: float = 600.0) -> None:
        self.redis = client
        self.max_inflight = max_inflight
        self.lease = lease
        self._acquire = client.register_script(_ACQUIRE)

    def acquire(self, step_id: int) -> int:
        """Take a slot for ``step_id``. Returns 0 when granted (or already held), else its place in line.

        Waiters keep the place of their first refusal (first come, first asked) for up to 10 minutes.
        """
        result = int(
            self._acquire(
                keys=[INFLIGHT_KEY, WAITING_KEY], args=[time.time(), step_id, self.max_inflight, self.lease]
            )
        )
        return 0 if result < 0 else result

    def wait_hint(self, waiting: int, expected_job_seconds: float) -> float:
        """Seconds a refused submitter at place ``waiting`` in line should wait before asking again.

        Slots free up about every ``expected_job_seconds / max_inflight`` seconds; the waiter at place k
        asks again about when k slots will have been freed, so a freed slot is taken promptly and each
        waiter asks about once per place it moves up, rather than every waiter polling on a clock.
        """
        per_release = expected_job_seconds / max(1, self.max_inflight)
        delay = waiting * per_release
        return min(15.0, max(0.2, delay * random.uniform(0.85, 1.15)))

    def refresh(self, step_id: int) -> None:
        self.redis.zadd(INFLIGHT_KEY, {str(step_id): time.time() + self.lease}, xx=True)

    def release(self, step_id: int) -> None:
        self.redis.zrem(INFLIGHT_KEY, str(step_id))

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
