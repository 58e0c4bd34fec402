"""Per-process singletons for tasks: settings, ledger, LetzAI client, media store, Redis and limits.

Built lazily and once per process (after a prefork fork each child builds its own), so importing a task
module never opens a connection. :func:`deps` hands them to the engine (``letzflow.engine``) as one
object. Tests replace them with :func:`override`.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

import redis

from config.settings import Settings, get_settings
from letzflow.engine.deps import Deps
from storage.ledger import Ledger
from storage.models import utcnow
from tasks.celery_app import publish_parked
from tasks.learned import LearnedDurations
from tasks.limits import InflightLimiter, RateLimiter
from tasks.liveness import Liveness
from tasks.waker import Waker

if TYPE_CHECKING:  # built on first use: the CLI writing a batch needs no LetzAI client (nor requests)
    from letzai.client import LetzAIClient

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
    """Replace singletons (tests): settings, ledger, client, store, redis, inflight, rate, durations.

    The engine's collaborators (:func:`deps`) are built again from the new singletons, unless ``deps``
    itself is given.
    """
    if "deps" not in values:
        _cache.pop("deps", None)
    _cache.update(values)


def reset() -> None:
    _cache.clear()


def settings() -> Settings:
    return _get("settings", get_settings)  # type: ignore[no-any-return]


def ledger() -> Ledger:
    return _get("ledger", lambda: Ledger(settings().database_url))  # type: ignore[no-any-return]


def client() -> LetzAIClient:
    def build() -> LetzAIClient:
        from letzai.client import LetzAIClient

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
        from storage.media import S3MediaStore

        s = settings()
        return S3MediaStore.at(s.s3_endpoint_url, s.s3_bucket, s.s3_prefix)

    return _get("store", build)


def redis_client() -> redis.Redis:
    return _get(  # type: ignore[no-any-return]
        "redis",
        lambda: redis.Redis.from_url(settings().redis_url, socket_timeout=10, socket_connect_timeout=5),
    )


def inflight() -> InflightLimiter:
    return _get(  # type: ignore[no-any-return]
        "inflight",
        lambda: InflightLimiter(redis_client(), settings().letzai_max_inflight, on_handover=publish_parked),
    )


#: This process's Celery worker node name (set in the worker before its pool starts; None elsewhere).
WORKER_NAME: list[str | None] = [None]


def worker_name() -> str | None:
    return WORKER_NAME[0]


def liveness() -> Liveness:
    return _get(  # type: ignore[no-any-return]
        "liveness", lambda: Liveness(redis_client(), settings().letzflow_worker_dead_after)
    )


def waker() -> Waker:
    """Webhook wake-ups: batons, parked looks and hints (:mod:`tasks.waker`)."""
    return _get("waker", lambda: Waker(redis_client()))  # type: ignore[no-any-return]


def rate() -> RateLimiter:
    return _get("rate", lambda: RateLimiter(redis_client(), settings().letzai_max_rps))  # type: ignore[no-any-return]


def durations() -> LearnedDurations:
    """Learned first-look times per duration key: Redis, written behind to the ledger."""

    def build() -> LearnedDurations:
        from storage.durations import Durations

        return LearnedDurations(
            redis_client(), lambda: Durations(ledger().engine), settings().letzai_max_inflight
        )

    return _get("durations", build)  # type: ignore[no-any-return]


def expected_duration(key: str) -> float:
    """The learned first-look time of ``key``'s jobs (a duration key or a bare kind; seconds), or the cold
    first look while nothing is learned."""
    return durations().figure(key).wait


def deps() -> Deps:
    """The engine's collaborators (:class:`letzflow.engine.deps.Deps`): this process's singletons, the
    media download, the UTC clock and the settings values the engine reads. Built once per process."""

    def build() -> Deps:
        from letzai.media import open_media

        s = settings()
        return Deps(
            ledger=ledger(),
            client=client(),
            inflight=inflight(),
            rate=rate(),
            durations=durations(),
            store=store(),
            open_media=open_media,
            now=utcnow,
            visibility_timeout=s.letzflow_visibility_timeout,
            image_deadline=s.letzflow_image_deadline,
            video_deadline=s.letzflow_video_deadline,
        )

    return _get("deps", build)  # type: ignore[no-any-return]
