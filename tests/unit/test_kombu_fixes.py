"""The kombu work-around: a restore on close through a vanished connection no longer kills the worker."""

from __future__ import annotations

from contextlib import contextmanager

from kombu.transport import redis as kombu_redis

from workers.kombu_fixes import tolerate_restore_without_connection


class _GoneChannel:
    @contextmanager
    def conn_or_acquire(self, client=None):
        raise AttributeError("'NoneType' object has no attribute 'hostname'")  # what kombu 5.7.0 raises
        yield


class _QoS:
    def __init__(self) -> None:
        self.channel = _GoneChannel()
        self._delivered = {"tag-1": object(), "tag-2": object()}


def test_restoring_through_a_closed_connection_is_skipped_and_logged(caplog):
    tolerate_restore_without_connection()
    tolerate_restore_without_connection()  # applying it twice wraps once
    qos = _QoS()
    assert kombu_redis.QoS.restore_unacked(qos) is None  # type: ignore[arg-type]
    assert qos._delivered == {}
    assert "could not put 2 unacknowledged message(s) back" in caplog.text
    assert kombu_redis.QoS.restore_unacked.__wrapped_original__ is not None  # type: ignore[attr-defined]


def test_acking_through_a_closed_connection_is_skipped_and_logged(caplog):
    tolerate_restore_without_connection()
    qos = _QoS()
    assert kombu_redis.QoS.ack(qos, "tag-1") is None  # type: ignore[arg-type]
    assert list(qos._delivered) == ["tag-2"]
    assert "could not acknowledge message tag-1" in caplog.text


class _Message:
    def __init__(self, tag: str) -> None:
        self.delivery_tag = tag


class _Running:
    """What celery.worker.state.active_requests holds: a task running in the pool, with its message."""

    def __init__(self, tag: str) -> None:
        self.message = _Message(tag)


class _Consumer:
    """Enough of a Celery consumer for RestoreHeld: a connection whose channel's QoS records restores."""

    def __init__(self, fails: bool = False) -> None:
        self.restored: list[tuple[str, bool]] = []
        consumer = self

        class QoS:
            def restore_by_tag(self, tag, client=None, leftmost=False):
                if fails:
                    raise ConnectionError("gone again")
                consumer.restored.append((tag, leftmost))

        class Conn:
            default_channel = type("Channel", (), {"qos": QoS()})()

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        self.app = type("App", (), {"connection_for_write": staticmethod(lambda: Conn())})()


def test_held_messages_a_lost_connection_kept_are_put_back_after_reconnecting(caplog):
    from celery.worker import state

    from workers.kombu_fixes import UNRESTORED, RestoreHeld

    tolerate_restore_without_connection()
    UNRESTORED.clear()
    running = _Running("tag-2")  # a task still running: its own message is acked or redelivered as usual
    state.active_requests.add(running)
    try:
        kombu_redis.QoS.restore_unacked(_QoS())  # type: ignore[arg-type]
    finally:
        state.active_requests.discard(running)
    assert UNRESTORED == ["tag-1"]
    step = RestoreHeld.__new__(RestoreHeld)
    consumer = _Consumer()
    step.start(consumer)
    assert consumer.restored == [("tag-1", True)]
    assert UNRESTORED == []
    step.start(consumer)  # a later reconnection has nothing to put back
    assert consumer.restored == [("tag-1", True)]
    assert "put 1 held message(s) back" in caplog.text


def test_a_failed_put_back_is_logged_and_left_to_the_visibility_timeout(caplog):
    from workers.kombu_fixes import UNRESTORED, RestoreHeld

    UNRESTORED[:] = ["tag-9"]
    RestoreHeld.__new__(RestoreHeld).start(_Consumer(fails=True))
    assert UNRESTORED == []
    assert "could not put 1 held message(s) back after reconnecting: gone again" in caplog.text
