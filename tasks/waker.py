"""Where a webhook finds the poll it wakes: per step, a baton, a parked message and a hint, in Redis.

With webhooks on, a step's next look is *parked*: its poll message is published with a fallback countdown
(the webhook may never come) and a copy of the same message, due at once, is kept here. A webhook takes the
copy (once: ``GETDEL``) and publishes it, so the look comes the moment the job ends.

Two messages of one look now exist, and only one may go on with the chain (a chord counts every part that
returns). The **baton** decides: each look's messages carry the baton their parking drew; the first to
finish its look draws a new one (:meth:`Waker.claim`, compare-and-set in Lua), and a message whose baton
is no longer current is dropped unacknowledged-free (``Ignore``: acked, no chain, no chord count).
Batons are random, not counters, so a Redis that lost them cannot make an old message current again.

A webhook that finds nothing parked (it came before the step parked) leaves a **hint**, which the next
parking takes to look at once instead. Everything expires: batons after :data:`BATON_TTL`, parked copies
after their fallback, hints after :data:`HINT_TTL`.
"""

from __future__ import annotations

import secrets
from typing import cast

import redis

#: Seconds a baton is kept after its step's last look (past any message's life: the visibility timeout).
BATON_TTL = 4 * 3600
#: Seconds a hint waits for its step to park.
HINT_TTL = 600

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

    def park(self, step_id: int, message: str, ttl: float) -> None:
        """Keep ``message`` (a serialized signature, due at once) for the step's webhook."""
        self.client.set(self._key("park", step_id), message, ex=max(1, int(ttl) + 1))

    def unpark(self, step_id: int) -> str | None:
        """Take the parked message back (None: a webhook took it, or nothing is parked)."""
        raw = cast(bytes | None, self.client.getdel(self._key("park", step_id)))
        return raw.decode() if raw is not None else None

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
        self.client.delete(self._key("park", step_id), self._key("hint", step_id))
