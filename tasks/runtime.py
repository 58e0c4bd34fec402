"""Per-process singletons for tasks: settings, ledger, LetzAI client, media store, Redis and limits.

Built lazily and once per process (after a prefork fork each child builds its own), so importing a task
module never opens a connection. Tests replace them with :func:`override`.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis

from config.settings import Settings, get_settings
from letzai.client import LetzAIClient
from storage.ledger import Ledger
from tasks.limits import InflightLimiter, RateLimiter
from tasks.liveness import Liveness
from tasks.polling import DEFAULT_EXPECTED, first_look_rate, update_expected, update_first_look

_lock = threading.RLock()
_cache: dict[str, Any] = {}
_pid = os.getpid()


def _get(name: str, build: Any) -> Any:
    global _pid
    if os.getpid() != _pid:
        _cache.clear()
        _pid = os.getpid()
    value = _cache.get(name)
    if value is None:
        with _lock:
            value = _cache.get(name)
            if value is None:
                value = build()
                _cache[name] = value
    return value


def override(**values: Any) -> None:
    """Replace singletons (tests): settings, ledger, client, store, redis, inflight, rate."""
    _cache.update(values)


def reset() -> None:
    _cache.clear()


def settings() -> Settings:
    return _get("settings", get_settings)  # type: ignore[no-any-return]


def ledger() -> Ledger:
    return _get("ledger", lambda: Ledger(settings().database_url))  # type: ignore[no-any-return]


def client() -> LetzAIClient:
    def build() -> LetzAIClient:
        s = settings()
        return LetzAIClient(
            s.api_key,
            base_url=s.letzai_base_url,
            timeout=(5.0, s.letzai_timeout),
            organization_id=s.letzai_organization_id,
        )

    return _get("client", build)  # type: ignore[no-any-return]


def store() -> Any:
    def build() -> Any:
        from storage.media import S3MediaStore, make_s3_client

        s = settings()
        return S3MediaStore(make_s3_client(s.s3_endpoint_url), s.s3_bucket, s.s3_prefix)

    return _get("store", build)


def redis_client() -> redis.Redis:
    return _get(  # type: ignore[no-any-return]
        "redis",
        lambda: redis.Redis.from_url(settings().redis_url, socket_timeout=10, socket_connect_timeout=5),
    )


def inflight() -> InflightLimiter:
    return _get(  # type: ignore[no-any-return]
        "inflight", lambda: InflightLimiter(redis_client(), settings().letzai_max_inflight)
    )


def liveness() -> Liveness:
    return _get(  # type: ignore[no-any-return]
        "liveness", lambda: Liveness(redis_client(), settings().letzflow_worker_dead_after)
    )


def rate() -> RateLimiter:
    return _get("rate", lambda: RateLimiter(redis_client(), settings().letzai_max_rps))  # type: ignore[no-any-return]


#: Seconds a process reuses a learned duration it read from Redis: it moves a few percent per job, and a
#: submit and most polls each read it (a Redis round trip each).
EXPECTED_REUSE = 1.0


def _expected_seen() -> dict[str, tuple[float, float]]:
    """This process's learned durations: kind -> (seconds, monotonic time read)."""
    return _get("expected", dict)  # type: ignore[no-any-return]


def expected_duration(kind: str) -> float:
    """The learned typical duration of a ``kind`` job (seconds), shared through Redis."""
    seen = _expected_seen().get(kind)
    now = time.monotonic()
    if seen is not None and now - seen[1] < EXPECTED_REUSE:
        return seen[0]
    try:
        raw = redis_client().get(f"letzflow:expected:{kind}")
    except redis.RedisError:
        return seen[0] if seen is not None else DEFAULT_EXPECTED.get(kind, 15.0)
    value = float(raw) if raw else DEFAULT_EXPECTED.get(kind, 15.0)
    _expected_seen()[kind] = (value, now)
    return value


def learn_duration(kind: str, observed: float) -> None:
    key = f"letzflow:expected:{kind}"
    try:
        raw = redis_client().get(key)
        value = update_expected(float(raw) if raw else None, observed)
        redis_client().set(key, value, ex=7 * 24 * 3600)
    except redis.RedisError:
        return
    _expected_seen()[kind] = (value, time.monotonic())


def learn_first_look(kind: str, done: bool) -> None:
    """Adjust the shared first-look time of ``kind`` after a job that ended within it (``done``) or not."""
    key = f"letzflow:expected:{kind}"
    week = 7 * 24 * 3600
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.get(key)
        pipe.incr(f"{key}:n")
        raw, learned = pipe.execute()
        value = update_first_look(
            float(raw) if raw else None,
            done,
            DEFAULT_EXPECTED.get(kind, 15.0),
            first_look_rate(settings().letzai_max_inflight, int(learned) - 1 if raw else 0),
        )
        pipe.set(key, value, ex=week)
        pipe.expire(f"{key}:n", week)
        pipe.execute()
    except redis.RedisError:
        return
    _expected_seen()[kind] = (value, time.monotonic())
