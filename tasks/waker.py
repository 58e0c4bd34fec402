"""Where a webhook finds the poll it wakes: per step, a parked message, its fallback time, a baton and
a hint, in Redis.

With webhooks on, a step's next look is *parked*: its poll message (due at once, the rest of the chain in
its options) is kept here instead of being published, with the time of its fallback look in a sorted set.
Whoever comes first takes it, exactly once (a Lua script reads and deletes it): the job's webhook
(:meth:`Waker.wake`), or a worker's sweep once the fallback time has passed (:meth:`Waker.due`: the
webhook was lost). The one taker publishes it, so the look comes the moment the job ends, and a lost
webhook costs only the wait to its fallback. No timer message is sent per look.

A message may still come twice (a redelivery after a crash, a reconciler re-kick), and only one may go on
with the chain (a chord counts every part that returns). The **baton** decides: each parked message
carries the baton its parking drew; the first to finish its look draws a new one (:meth:`Waker.claim`,
compare-and-set in Lua), and a message whose baton is no longer current is dropped (``Ignore``: acked, no
chain, no chord count). Batons are random, not counters, so a Redis that lost them cannot make an old
message current again. A Redis that lost a parked message loses that step's look: the reconciler finds
the step overdue in the ledger and re-kicks it.

A webhook that finds nothing parked (it came before the step parked) leaves a **hint**, which the next
parking takes to look at once instead. Everything expires: batons after :data:`BATON_TTL`, parked messages
:data:`PARK_SLACK` seconds after their fallback, hints after :data:`HINT_TTL`.
"""

from __future__ import annotations

import secrets
import time
from typing import cast

import redis

#: Seconds a baton is kept after its step's last look (past any message's life: the visibility timeout).
BATON_TTL = 4 * 3600
#: Seconds a hint waits for its step to park.
HINT_TTL = 600
#: Seconds a parked message outlives its fallback time (a sweep takes it long before).
PARK_SLACK = 3600

# KEYS: park, due; ARGV: step. The parked message (taken: deleted), or false.
_TAKE = """
local m = redis.call('GET', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return m
"""

# KEYS: due; ARGV: now, limit, park key prefix. The parked messages whose fallback time has come (taken).
_DUE = """
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))) do
  local key = ARGV[3] .. id
  local m = redis.call('GET', key)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], id)
  if m then table.insert(out, m) end
end
return out
"""

# KEYS: baton; ARGV: the caller's baton ("" = none), the new baton, ttl. The new baton, or false.
_CLAIM = """
local cur = redis.call('GET', KEYS[1])
if ARGV[1] ~= '' and cur and cur ~= ARGV[1] then
  return false
end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return ARGV[2]
"""


class Waker:
    def __init__(self, client: redis.Redis, prefix: str = "letzflow:hook") -> None:
        self.client = client
        self.prefix = prefix
        self._claim = client.register_script(_CLAIM)
        self._take = client.register_script(_TAKE)
        self._due = client.register_script(_DUE)
        self.due_key = f"{prefix}:due"

    def _key(self, what: str, step_id: int) -> str:
        return f"{self.prefix}:{what}:{step_id}"

    def stale(self, step_id: int, baton: str) -> bool:
        """Another message of this step has gone on since ``baton`` was drawn."""
        current = cast(bytes | None, self.client.get(self._key("baton", step_id)))
        return current is not None and current.decode() != baton

    def claim(self, step_id: int, baton: str | None) -> str | None:
        """Go on with the step: draw a new baton (None: ``baton`` is stale, another message went on).

        ``baton`` None (a message from before any parking: the chain's first poll, a re-kick) always wins.
        """
        new = secrets.token_hex(8)
        got = self._claim(keys=[self._key("baton", step_id)], args=[baton or "", new, BATON_TTL])
        return new if got else None

    def park(self, step_id: int, message: str, fallback_at: float) -> None:
        """Keep ``message`` (a serialized signature, due at once) until the step's webhook takes it, or a
        sweep after ``fallback_at`` (epoch seconds)."""
        ttl = max(1, int(fallback_at - time.time() + PARK_SLACK))
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self._key("park", step_id), message, ex=ttl)
        pipe.zadd(self.due_key, {str(step_id): fallback_at})
        pipe.execute()

    def unpark(self, step_id: int) -> str | None:
        """Take the parked message (None: a webhook or a sweep took it, or nothing is parked)."""
        raw = self._take(keys=[self._key("park", step_id), self.due_key], args=[step_id])
        return raw.decode() if isinstance(raw, bytes) else raw

    def due(self, now: float, limit: int = 500) -> list[str]:
        """Take the parked messages whose fallback time has come (their webhooks were lost or late)."""
        found = self._due(keys=[self.due_key], args=[now, limit, f"{self.prefix}:park:"])
        return [m.decode() if isinstance(m, bytes) else str(m) for m in found or []]

    def take_hint(self, step_id: int) -> bool:
        """Whether a webhook came for the step while nothing was parked (the hint is used up)."""
        return bool(self.client.delete(self._key("hint", step_id)))

    def wake(self, step_id: int) -> str | None:
        """A webhook came: the parked message to publish now, or None (a hint is left for the parking).

        The hint is left first and taken back after: a parking in between sees it and looks at once.
        """
        hint = self._key("hint", step_id)
        self.client.set(hint, b"1", ex=HINT_TTL)
        message = self.unpark(step_id)
        if message is not None:
            self.client.delete(hint)
        return message

    def done(self, step_id: int) -> None:
        """The step's look found it ended: nothing parked or hinted is needed (its baton stays, so late
        messages of it stay stale)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.delete(self._key("park", step_id), self._key("hint", step_id))
        pipe.zrem(self.due_key, str(step_id))
        pipe.execute()
