"""Which workers are alive, and who runs the reconciler: no single beat needed.

Every worker process beats into one Redis hash (``letzflow:workers``: name → last beat, unix seconds)
and, each reconciler period, offers to run the reconciler: the first offer of a period wins
(``SET NX PX``), so however many workers there are, one pass is enqueued per period, and a pass itself
runs under a lease so two never overlap. A worker that stops cleanly leaves the hash; one that stops
beating (SIGKILL, OOM, a lost machine) is found dead by the next pass, which starts a *crash window*:
for a while, items whose next look is due are re-kicked at once instead of after the usual grace, because
the dead worker's messages stay unacknowledged in Redis until the visibility timeout (an hour by default).

Time comes in as an argument (``now``, unix seconds); nothing here sleeps.
"""

from __future__ import annotations

import uuid
from typing import Any

import redis

WORKERS_KEY = "letzflow:workers"
OFFER_KEY = "letzflow:reconcile:offer"
LEASE_KEY = "letzflow:reconcile:lease"
CRASH_KEY = "letzflow:crash:until"
#: Kept by every reconciler pass: its absence means Redis lost letzflow's keys (restarted empty, flushed).
EPOCH_KEY = "letzflow:epoch"
#: How long after a worker death the reconciler re-kicks due work without the usual grace (s).
CRASH_WINDOW = 120.0

# Remove the named dead workers and answer those this call removed: two passes never both claim one.
_CLAIM_DEAD = """
local gone = {}
for i, name in ipairs(ARGV) do
  if i > 1 then
    local beat = tonumber(redis.call('HGET', KEYS[1], name))
    if beat and beat < tonumber(ARGV[1]) then
      redis.call('HDEL', KEYS[1], name)
      table.insert(gone, name)
    end
  end
end
return gone
"""

_RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

_RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Liveness:
    """Worker heartbeats, the reconciler's offer and lease, and the crash window, in Redis."""

    def __init__(self, client: redis.Redis, dead_after: float) -> None:
        self.redis = client
        self.dead_after = dead_after
        self._claim_dead = client.register_script(_CLAIM_DEAD)
        self._release = client.register_script(_RELEASE_LEASE)
        self._renew = client.register_script(_RENEW_LEASE)

    def beat(self, name: str, now: float) -> None:
        self.redis.hset(WORKERS_KEY, name, f"{now:.3f}")

    def leave(self, name: str) -> None:
        self.redis.hdel(WORKERS_KEY, name)

    def _beats(self) -> dict[str, float]:
        raw: dict[Any, Any] = self.redis.hgetall(WORKERS_KEY)  # type: ignore[assignment]
        return {(k.decode() if isinstance(k, bytes) else str(k)): float(v) for k, v in raw.items()}

    def alive(self, now: float) -> dict[str, float]:
        """Workers that beat within ``dead_after`` seconds, with their last beat."""
        beats = self._beats()
        return {k: v for k, v in beats.items() if v >= now - self.dead_after}

    def claim_dead(self, now: float) -> list[str]:
        """Workers that stopped beating, each answered to exactly one caller (and forgotten)."""
        beats = self._beats()
        stale = [k for k, v in beats.items() if v < now - self.dead_after]
        if not stale:
            return []
        gone = self._claim_dead(keys=[WORKERS_KEY], args=[now - self.dead_after, *stale])
        return [g.decode() if isinstance(g, bytes) else str(g) for g in gone]

    def offer(self, period: float) -> bool:
        """True for the first offer of a period, across every worker."""
        return bool(self.redis.set(OFFER_KEY, "1", nx=True, px=max(100, int(period * 1000))))

    def take_lease(self, ttl: float) -> str | None:
        """A token while no other pass runs (it expires after ``ttl`` s if its holder dies), else None."""
        token = uuid.uuid4().hex
        if self.redis.set(LEASE_KEY, token, nx=True, px=max(1000, int(ttl * 1000))):
            return token
        return None

    def renew_lease(self, token: str, ttl: float) -> bool:
        """Keep holding the lease another ``ttl`` s; False if it ran out and was taken (or lost)."""
        return bool(self._renew(keys=[LEASE_KEY], args=[token, max(1000, int(ttl * 1000))]))

    def release_lease(self, token: str) -> None:
        self._release(keys=[LEASE_KEY], args=[token])

    def data_lost(self) -> bool:
        """True for the first caller after Redis lost letzflow's keys (and on a Redis never used): the
        messages parked there (submitters waiting for a slot, looks waiting for webhooks) went with them,
        and the ledger's open work must be re-kicked as after a worker death."""
        return bool(self.redis.set(EPOCH_KEY, "1", nx=True))

    def open_crash_window(self, now: float, length: float = CRASH_WINDOW) -> None:
        self.redis.set(CRASH_KEY, f"{now + length:.3f}")

    def in_crash_window(self, now: float) -> bool:
        raw = self.redis.get(CRASH_KEY)
        return raw is not None and float(raw) > now
