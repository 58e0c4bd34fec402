"""Heartbeats, the reconciler's offer and lease, and the crash window (fakeredis, explicit clock)."""

from __future__ import annotations

import threading
import time

import fakeredis
import pytest

from tasks.liveness import Liveness


@pytest.fixture
def live() -> Liveness:
    return Liveness(fakeredis.FakeRedis(), dead_after=10.0)


def test_a_worker_that_stops_beating_is_found_dead_once(live):
    live.beat("w1", 100.0)
    live.beat("w2", 100.0)
    live.beat("w2", 108.0)
    assert live.claim_dead(105.0) == []
    assert live.claim_dead(111.0) == ["w1"]
    assert live.claim_dead(111.0) == []  # claimed: a second pass does not sweep for it again
    assert set(live.alive(111.0)) == {"w2"}


def test_a_clean_stop_is_no_death(live):
    live.beat("w1", 100.0)
    live.leave("w1")
    assert live.claim_dead(200.0) == []


def test_concurrent_passes_claim_each_dead_worker_once(live):
    for n in range(20):
        live.beat(f"w{n}", 0.0)
    claimed: list[str] = []
    threads = [threading.Thread(target=lambda: claimed.extend(live.claim_dead(50.0))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(f"w{n}" for n in range(20))


def test_one_offer_wins_a_period_and_one_pass_holds_the_lease(live):
    assert live.offer(5.0) is True
    assert [live.offer(5.0) for _ in range(5)] == [False] * 5
    token = live.take_lease(60.0)
    assert token and live.take_lease(60.0) is None
    live.release_lease("not-mine")
    assert live.take_lease(60.0) is None
    live.release_lease(token)
    assert live.take_lease(60.0) is not None


def test_the_crash_window_closes(live):
    assert not live.in_crash_window(0.0)
    live.open_crash_window(100.0, length=120.0)
    assert live.in_crash_window(219.0) and not live.in_crash_window(221.0)


def test_a_post_is_taken_for_ended_only_once_its_sender_stopped_beating(live):
    import time

    from storage.models import Step
    from tasks import lost_answers, runtime

    step = Step(batch_id="b", item_id=1, idempotency_key="k", index=0, kind="generate", remote_kind="image")
    runtime.override(liveness=live)
    try:
        assert not lost_answers._sender_dead(step)  # no sender recorded: it may be in flight
        live.beat("w1@h:1", time.time())
        step.submitting_by = "w1@h:1"
        assert not lost_answers._sender_dead(step)  # alive: its POST may still be on its way
        live.beat("w1@h:1", time.time() - 60)
        assert lost_answers._sender_dead(step)  # silent for a minute: that POST has ended
    finally:
        runtime.reset()


def test_a_redis_that_lost_its_keys_is_noticed_once_per_loss(live):
    assert live.data_lost()  # a Redis never used: open work (if any) is re-kicked
    assert not live.data_lost()
    assert not live.data_lost()
    live.redis.flushall()  # restarted empty: the parked messages are gone with the rest
    assert live.data_lost()
    assert not live.data_lost()


def test_a_lease_is_renewed_only_by_its_holder_and_one_left_behind_runs_out(live):
    from tasks.reconcile import LEASE

    token = live.take_lease(LEASE)
    assert token is not None
    assert live.renew_lease(token, LEASE)
    assert live.redis.pttl("letzflow:reconcile:lease") > (LEASE - 1) * 1000
    assert not live.renew_lease("not-mine", 600.0)
    assert live.redis.pttl("letzflow:reconcile:lease") <= LEASE * 1000
    # A pass whose release failed (Redis went away under it, then came back with its data) blocks the
    # next passes for one lease at most: well under a minute, where a stalled step is re-kicked after 10 s.
    assert LEASE <= 20.0
    live.redis.pexpire("letzflow:reconcile:lease", 1)
    time.sleep(0.01)
    assert not live.renew_lease(token, LEASE)  # ran out: a pass that stalled cannot take it back
    assert live.take_lease(LEASE) is not None


def test_a_pass_whose_lease_ran_out_stops_at_its_next_renewal(live):
    from tasks.reconcile import LEASE, LeaseLost, _Lease

    token = live.take_lease(LEASE)
    assert token is not None
    lease = _Lease(live, token)
    lease.keep()  # not due yet: nothing asked
    lease.at -= LEASE / 2  # the pass has run half a lease
    lease.keep()  # renewed: still its own
    assert live.redis.pttl("letzflow:reconcile:lease") > (LEASE - 1) * 1000
    live.redis.delete("letzflow:reconcile:lease")  # ran out, and another pass took it
    other = live.take_lease(LEASE)
    assert other is not None
    lease.at -= LEASE / 2
    with pytest.raises(LeaseLost):
        lease.keep()
    assert live.redis.get("letzflow:reconcile:lease").decode() == other  # the other pass keeps it
