"""A worker's timers during a Redis outage: the outage is logged when it starts, then rarely, then its end."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from tasks import runtime
from workers import liveness_step
from workers.liveness_step import Liveness


@pytest.fixture
def step(monkeypatch):
    monkeypatch.setattr(runtime, "WORKER_NAME", [None])
    return Liveness(SimpleNamespace(hostname="w1@test"))


def test_an_outage_is_logged_once_per_quiet_period_and_its_end_once(step, monkeypatch, caplog):
    clock = [1000.0]
    monkeypatch.setattr(liveness_step.time, "monotonic", lambda: clock[0])

    def down() -> None:
        raise ConnectionError("Redis is away")

    caplog.set_level(logging.WARNING, logger="workers.liveness_step")
    for _ in range(60):  # 30 s of 0.5 s sweeps
        step._safely(down)
        clock[0] += 0.5
    step._safely(down)  # 30 s after the first report
    step._safely(lambda: None)
    step._safely(lambda: None)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "liveness: Redis is away",
        "liveness: Redis is away (59 more failures since the last report)",
        "liveness: Redis answers again",
    ]
