"""The reconciler's pass on a Redis without letzflow's keys: a crash sweep only when some batch is running
(its messages may have gone with the data); a new Redis under an idle ledger opens no crash window. A real
SQLite ledger, fakeredis, the real liveness and limiter."""

from __future__ import annotations

from datetime import timedelta

import fakeredis
import pytest

from storage.models import utcnow
from tasks import reconcile, runtime
from tasks.limits import InflightLimiter
from tasks.liveness import CRASH_KEY, EPOCH_KEY, Liveness


@pytest.fixture
def kicked(ledger, monkeypatch):
    r = fakeredis.FakeRedis()
    monkeypatch.setattr(runtime, "ledger", lambda: ledger)
    monkeypatch.setattr(runtime, "liveness", lambda: Liveness(r, dead_after=12.0))
    monkeypatch.setattr(runtime, "inflight", lambda: InflightLimiter(r, max_inflight=5))
    monkeypatch.setattr(reconcile, "grace", lambda: timedelta(seconds=10))
    sent: list[int] = []
    monkeypatch.setattr(reconcile, "enqueue_item", sent.append)
    return r, sent


def test_a_new_redis_under_an_idle_ledger_opens_no_crash_window(ledger, kicked):
    r, sent = kicked
    done = reconcile.reconcile()
    assert sent == []
    assert done["dead_workers"] == 0 and done["rekicked"] == 0
    assert not r.exists(CRASH_KEY)  # the next passes keep the usual grace
    assert r.exists(EPOCH_KEY)  # and a later loss of the data is noticed


def test_an_emptied_redis_under_a_running_batch_re_kicks_its_queued_items(ledger, batch, kicked):
    r, sent = kicked
    items = ledger.items(batch.id)
    for item in items:  # fed a moment ago: sent, and lost with the data
        ledger.set_item_state(item.id, ("pending",), "queued", kicked_at=utcnow())
    reconcile.reconcile()
    assert r.exists(CRASH_KEY)
    assert sorted(sent) == sorted(i.id for i in items)
