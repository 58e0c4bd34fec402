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
from typing import Any

log = logging.getLogger(__name__)


def tolerate_restore_without_connection() -> None:
    from kombu.transport import redis as kombu_redis

    original = kombu_redis.QoS.restore_unacked
    if getattr(original, "_letzflow_tolerant", False):
        return

    def restore_unacked(self: Any, client: Any = None) -> Any:
        try:
            return original(self, client)
        except (AttributeError, OSError, kombu_redis.redis.exceptions.ConnectionError) as exc:
            log.warning(
                "could not put %d unacknowledged message(s) back on their queues (%s: %s): they stay in "
                "Redis's unacked set and come back after the visibility timeout",
                len(self._delivered),
                type(exc).__name__,
                exc,
            )
            self._delivered.clear()
            return None

    restore_unacked._letzflow_tolerant = True  # type: ignore[attr-defined]
    restore_unacked.__wrapped_original__ = original  # type: ignore[attr-defined]
    kombu_redis.QoS.restore_unacked = restore_unacked  # type: ignore[method-assign]

    original_ack = kombu_redis.QoS.ack

    def ack(self: Any, delivery_tag: Any) -> Any:
        # A task that ends after the connection is gone acks through the same vanished connection (the
        # same AttributeError). Its message stays in the unacked set and is delivered again after the
        # visibility timeout: letzflow's tasks are idempotent, so the second run finds the work done.
        try:
            return original_ack(self, delivery_tag)
        except (AttributeError, OSError, kombu_redis.redis.exceptions.ConnectionError) as exc:
            log.warning(
                "could not acknowledge message %s (%s: %s): it will be delivered again after the "
                "visibility timeout",
                delivery_tag,
                type(exc).__name__,
                exc,
            )
            self._delivered.pop(delivery_tag, None)
            return None

    kombu_redis.QoS.ack = ack  # type: ignore[method-assign]
