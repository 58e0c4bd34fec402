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
