"""Learned first-look times: hot in Redis, shared by every worker, written behind to the ledger.

Per duration key (``letzflow.engine.duration_keys``), under ``letzflow:expected:{key}``:

- the value: the learned first-look time in seconds (also copied to the bare kind's key, the fallback of
  every key of that kind nothing is learned for yet);
- ``:n``: looks that taught it (while below ``SEED_SAMPLES``: seed estimates taken);
- ``:sample``: the seed estimates (a list, dropped once seeding is over);
- ``:cold``: the cold first look, lowered when cold jobs are found done at it.

What a look teaches is decided by ``letzflow.engine.polling.what_a_look_teaches`` (pure); this module only
reads and writes. A key Redis has no value for (a new Redis, or a week unused) is read from the ledger's
``learned_duration`` table and put back into Redis; a learned value is saved there at most every
:data:`PERSIST_EVERY` seconds per key and process, never per job.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from letzflow.engine.duration_keys import fallback_keys, kind_of
from letzflow.engine.polling import (
    COLD_FIRST_LOOK,
    DEFAULT_EXPECTED,
    SEED_SAMPLES,
    SEED_WEIGHT,
    cold_look_after_done,
    ended_within,
    first_look_rate,
    seeded_first_look,
    update_first_look,
    what_a_look_teaches,
)
from storage.durations import Durations, DurationsError

log = logging.getLogger(__name__)

PREFIX = "letzflow:expected:"
#: Seconds a Redis copy lives unused (the ledger keeps it longer).
REDIS_TTL = 7 * 24 * 3600
#: Seconds a process reuses a figure it read: it moves a few percent per job, and a submit and most polls
#: each read it.
REUSE = 1.0
#: Least seconds between two ledger writes of one key by one process.
PERSIST_EVERY = 5.0


@dataclass(frozen=True)
class Figure:
    """What is known of a key: its first-look time (None: cold), seed estimates taken, the cold look."""

    first_look: float | None
    samples: int
    cold_look: float = COLD_FIRST_LOOK

    @property
    def cold(self) -> bool:
        return self.first_look is None

    @property
    def wait(self) -> float:
        """Seconds such a job is expected to hold its slot at least (refused submitters pace by it)."""
        return self.first_look if self.first_look is not None else self.cold_look


def _float(raw: bytes | str | None) -> float | None:
    try:
        value = float(raw) if raw is not None else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and value > 0 else None


class LearnedDurations:
    """Read and teach learned first-look times.

    Args:
        client: the Redis client (the hot copy).
        store: builds the ledger's :class:`Durations` (called once, on first use); None: Redis only.
        max_inflight: the in-flight cap (sets the tracker's step size).
        clock: monotonic seconds (tests).
    """

    def __init__(
        self,
        client: redis.Redis,
        store: Callable[[], Durations] | None,
        max_inflight: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.redis = client
        self._store_factory = store
        self._store: Durations | None = None
        self.max_inflight = max_inflight
        self.clock = clock
        self._seen: dict[str, tuple[Figure, float]] = {}
        self._saved: dict[str, float] = {}

    def _durations(self) -> Durations | None:
        if self._store is None and self._store_factory is not None:
            try:
                self._store = self._store_factory()
            except Exception as exc:  # the ledger is down: Redis alone still works
                log.warning("learned durations: the ledger table cannot be opened: %s", exc)
                return None
        return self._store

    def figure(self, key: str) -> Figure:
        """What is known of ``key`` (the kind's figure when the key has none; from the ledger if Redis has
        neither). Redis errors answer the last figure seen, else cold."""
        now = self.clock()
        seen = self._seen.get(key)
        if seen is not None and now - seen[1] < REUSE:
            return seen[0]
        names = fallback_keys(key)
        try:
            raw = self.redis.mget([PREFIX + n for n in names] + [f"{PREFIX}{key}:n", f"{PREFIX}{key}:cold"])
        except redis.RedisError:
            return seen[0] if seen is not None else Figure(None, 0)
        values = [_float(r) for r in raw[: len(names)]]
        samples = int(_float(raw[-2]) or 0)
        cold_look = _float(raw[-1]) or COLD_FIRST_LOOK
        value = next((v for v in values if v is not None), None)
        if values[0] is None:
            found = self._restore(names)
            if key in found:
                value, samples = found[key]
            elif value is None:
                value = next((found[n][0] for n in names if n in found), None)
        figure = Figure(value, samples, cold_look)
        self._seen[key] = (figure, now)
        return figure

    def _restore(self, names: tuple[str, ...]) -> dict[str, tuple[float, int]]:
        """Rows of ``names`` from the ledger, put back into Redis (if no one has meanwhile)."""
        store = self._durations()
        if store is None:
            return {}
        try:
            found = store.load(names)
        except DurationsError as exc:
            log.warning("learned durations: %s", exc)
            return {}
        if found:
            try:
                pipe = self.redis.pipeline(transaction=False)
                for name, (seconds, samples) in found.items():
                    pipe.set(PREFIX + name, seconds, ex=REDIS_TTL, nx=True)
                    pipe.set(f"{PREFIX}{name}:n", samples, ex=REDIS_TTL, nx=True)
                pipe.execute()
            except redis.RedisError:
                pass
        return found

    def learn(
        self, key: str, *, first_look: bool, done: bool, elapsed: float, progress: float, had_progress: bool
    ) -> None:
        """Teach ``key`` what one look at one of its jobs showed (see ``what_a_look_teaches``)."""
        figure = self.figure(key)
        lesson = what_a_look_teaches(
            samples=figure.samples,
            first_look=first_look,
            done=done,
            elapsed=elapsed,
            progress=progress,
            had_progress=had_progress,
        )
        if lesson is None:
            return
        what, seconds = lesson
        try:
            if what == "cold":
                lowered = cold_look_after_done(figure.cold_look, seconds)
                self.redis.set(f"{PREFIX}{key}:cold", lowered, ex=REDIS_TTL)
                self._seen[key] = (Figure(figure.first_look, figure.samples, lowered), self.clock())
            elif what == "sample":
                self._sample(key, seconds, figure)
            elif figure.first_look is not None:
                within = ended_within(figure.first_look, done, elapsed, progress)
                if within is not None:
                    self._track(key, within, figure)
        except redis.RedisError:
            return

    def _sample(self, key: str, estimate: float, figure: Figure) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(f"{PREFIX}{key}:sample", estimate)
        pipe.incr(f"{PREFIX}{key}:n")
        pipe.lrange(f"{PREFIX}{key}:sample", 0, -1)
        _, count, raw = pipe.execute()
        if count > SEED_SAMPLES:  # another process finished seeding meanwhile
            return
        value = seeded_first_look([v for r in raw if (v := _float(r)) is not None])
        samples = SEED_WEIGHT if count >= SEED_SAMPLES else int(count)
        self._write(key, value, samples, figure.cold_look, drop_sample=count >= SEED_SAMPLES)

    def _track(self, key: str, within: bool, figure: Figure) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(PREFIX + key)
        pipe.incr(f"{PREFIX}{key}:n")
        raw, learned = pipe.execute()
        rate = first_look_rate(self.max_inflight, int(learned) - 1)
        current = _float(raw) or figure.first_look  # the shared value, not this process's copy
        value = update_first_look(current, within, DEFAULT_EXPECTED.get(kind_of(key), 15.0), rate)
        self._write(key, value, learned, figure.cold_look)

    def _write(
        self, key: str, value: float, samples: int, cold_look: float, drop_sample: bool = False
    ) -> None:
        """Set the hot copy (and the kind's fallback); save to the ledger if this key's last save is old."""
        kind = kind_of(key)
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(PREFIX + key, value, ex=REDIS_TTL)
        pipe.expire(f"{PREFIX}{key}:n", REDIS_TTL)
        if drop_sample:
            pipe.set(f"{PREFIX}{key}:n", samples, ex=REDIS_TTL)
            pipe.delete(f"{PREFIX}{key}:sample")
        else:
            pipe.expire(f"{PREFIX}{key}:sample", REDIS_TTL)
        if kind != key:
            pipe.set(PREFIX + kind, value, ex=REDIS_TTL)
        pipe.execute()
        now = self.clock()
        self._seen[key] = (Figure(value, samples, cold_look), now)
        if drop_sample or now - self._saved.get(key, -math.inf) >= PERSIST_EVERY:
            self._saved[key] = now
            self._save(key, kind, value, samples)

    def _save(self, key: str, kind: str, value: float, samples: int) -> None:
        store = self._durations()
        if store is None:
            return
        try:
            store.save(key, kind, value, samples)
            if kind != key:
                store.save(kind, kind, value, samples)
        except DurationsError as exc:
            log.warning("learned durations: %s", exc)
