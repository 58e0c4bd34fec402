"""A work-around for kombu's Redis transport (seen with kombu 5.7.0), applied when the Celery app loads.

When the broker connection drops while the worker holds delivered, unacknowledged messages (every ETA
task it is waiting to run: letzflow's polls are sent with countdowns), the channel's ``close()`` restores
them through a connection that is already gone: ``AttributeError: 'NoneType' object has no attribute
'hostname'`` escapes, the worker logs "Unrecoverable error" and stops consuming for good. Those messages are
still in Redis's ``unacked`` hash (kombu writes them there on delivery), and the transport puts such
messages back on their queue once they are older than the visibility timeout (``restore_visible``); when
Redis lost them, letzflow's reconciler re-kicks their steps from the ledger. So a failed eager restore is
logged and skipped instead of killing the worker.

The tags of the messages it could not put back, except those of tasks still running (their messages are
acked or redelivered by the usual rules), are kept in :data:`UNRESTORED`; once the connection is back,
:class:`RestoreHeld` (a consumer bootstep) puts them back on their queues, as kombu would have done: the
held polls run at their own ETAs instead of after the visibility timeout or the reconciler's grace (a
Redis restart cost 11-18 s of waiting, 120 s when a reconciler pass held its lease through it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from celery import bootsteps

log = logging.getLogger(__name__)

#: Delivery tags of held messages (ETA tasks waiting in this worker) a lost connection kept from being put
#: back on their queues; :class:`RestoreHeld` puts them back after the reconnection.
UNRESTORED: list[str] = []


def _running_tags() -> set[str]:
    from celery.worker import state

    return {str(request.message.delivery_tag) for request in list(state.active_requests) if request.message}


class RestoreHeld(bootsteps.StartStopStep):
    """A consumer bootstep: after a reconnection, put back the held messages the lost connection kept."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        if not UNRESTORED:
            return
        tags, UNRESTORED[:] = list(UNRESTORED), []
        try:
            with c.app.connection_for_write() as conn:
                qos = conn.default_channel.qos
                for tag in tags:
                    qos.restore_by_tag(tag, leftmost=True)
        except Exception as exc:  # the visibility timeout (or the reconciler) brings them back instead
            log.warning("could not put %d held message(s) back after reconnecting: %s", len(tags), exc)
            return
        log.warning("put %d held message(s) back on their queues after reconnecting", len(tags))


def tolerate_restore_without_connection() -> None:
    from kombu.transport import redis as kombu_redis

    if getattr(kombu_redis.QoS.restore_unacked, "_letzflow_tolerant", False):
        return

    def unrestored(qos: Any, client: Any = None) -> tuple[str, str]:
        count = len(qos._delivered)
        running = _running_tags()
        UNRESTORED.extend(str(tag) for tag in qos._delivered if str(tag) not in running)
        qos._delivered.clear()
        return (
            f"put {count} unacknowledged message(s) back on their queues",
            "they stay in Redis's unacked set: the ones not running are put back once the connection is "
            "back, the rest come back after the visibility timeout",
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
