"""A work-around for kombu's Redis transport (seen with kombu 5.7.0), applied when the Celery app loads.

When the broker connection drops while the worker holds delivered, unacknowledged messages (every ETA
task it is waiting to run: letzflow's polls are sent with countdowns), the channel's ``close()`` restores
them through a connection that is already gone: ``AttributeError: 'NoneType' object has no attribute
'hostname'`` escapes, the worker logs "Unrecoverable error" and stops consuming for good. Those messages are
still in Redis's ``unacked`` hash (kombu writes them there on delivery), and the transport puts such
messages back on their queue once they are older than the visibility timeout (``restore_visible``); when
Redis lost them, letzflow's reconciler re-kicks their steps from the ledger. So a failed eager restore is
logged and skipped instead of killing the worker.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def tolerate_restore_without_connection() -> None:
    from kombu.transport import redis as kombu_redis

    if getattr(kombu_redis.QoS.restore_unacked, "_letzflow_tolerant", False):
        return

    def unrestored(qos: Any, client: Any = None) -> tuple[str, str]:
        count = len(qos._delivered)
        qos._delivered.clear()
        return (
            f"put {count} unacknowledged message(s) back on their queues",
            "they stay in Redis's unacked set and come back after the visibility timeout",
        )

    def unacked(qos: Any, delivery_tag: Any) -> tuple[str, str]:
        # A task that ends after the connection is gone acks through the same vanished connection (the
        # same AttributeError). Its message stays in the unacked set and is delivered again after the
        # visibility timeout: letzflow's tasks are idempotent, so the second run finds the work done.
        qos._delivered.pop(delivery_tag, None)
        return (
            f"acknowledge message {delivery_tag}",
            "it will be delivered again after the visibility timeout",
        )

    gone = (AttributeError, OSError, kombu_redis.redis.exceptions.ConnectionError)
    kombu_redis.QoS.restore_unacked = _tolerant(kombu_redis.QoS.restore_unacked, gone, unrestored)  # type: ignore[method-assign]
    kombu_redis.QoS.ack = _tolerant(kombu_redis.QoS.ack, gone, unacked)  # type: ignore[method-assign]


def _tolerant(
    original: Callable[..., Any],
    gone: tuple[type[BaseException], ...],
    forget: Callable[..., tuple[str, str]],
) -> Callable[..., Any]:
    """``original`` (a QoS method), except that when the connection has vanished under it, ``forget``
    drops the message(s) from this worker's bookkeeping and says what was not done and what follows."""

    def tolerant(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        except gone as exc:
            what, then = forget(self, *args, **kwargs)
            log.warning("could not %s (%s: %s): %s", what, type(exc).__name__, exc, then)
            return None

    tolerant._letzflow_tolerant = True  # type: ignore[attr-defined]
    tolerant.__wrapped_original__ = original  # type: ignore[attr-defined]
    return tolerant
