"""Hand-over of freed in-flight slots to parked submitters (the limiter's real Lua scripts, on fakeredis)."""

from __future__ import annotations

import random

import fakeredis
import pytest

from tasks.limits import InflightLimiter, Lane
from tasks.waiters import FALLBACK_MAX, fallback

HIGH, NORMAL = 9, 5


class Published(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


@pytest.fixture
def sent() -> Published:
    return Published()


def limiter_of(sent: Published, cap: int) -> InflightLimiter:
    return InflightLimiter(fakeredis.FakeRedis(), max_inflight=cap, on_handover=sent)


def refuse_and_park(
    limiter: InflightLimiter, step: int, lane: Lane = Lane(), fallback_in: float = 20.0
) -> None:
    assert limiter.acquire(step, lane) > 0, f"step {step} should have been refused"
    import time

    limiter.park(step, f"msg-{step}", time.time() + fallback_in)


def test_a_release_hands_its_slot_to_the_first_parked_waiter(sent):
    limiter = limiter_of(sent, cap=2)
    assert limiter.acquire(1) == 0 and limiter.acquire(2) == 0
    refuse_and_park(limiter, 3)
    refuse_and_park(limiter, 4)
    assert sent == [] and limiter.parked() == 2
    limiter.release(1)
    assert sent == ["msg-3"]
    assert limiter.holders() == {"2", "3"}
    assert limiter.acquire(3) == 0  # the woken submit finds the slot its own
    limiter.release(2)
    assert sent == ["msg-3", "msg-4"] and limiter.holders() == {"3", "4"} and limiter.parked() == 0
    limiter.release(3)
    limiter.release(4)
    assert sent == ["msg-3", "msg-4"] and limiter.holders() == set()


def test_a_slot_freed_between_the_refusal_and_the_parking_is_handed_over_at_once(sent):
    limiter = limiter_of(sent, cap=1)
    assert limiter.acquire(1) == 0
    assert limiter.acquire(2) > 0
    limiter.release(1)  # nobody parked yet: the slot stays free
    assert sent == [] and limiter.holders() == set()
    limiter.park(2, "msg-2", 1e12)
    assert sent == ["msg-2"] and limiter.holders() == {"2"}


def test_a_newcomer_queues_behind_parked_waiters(sent):
    limiter = limiter_of(sent, cap=1)
    assert limiter.acquire(1) == 0
    refuse_and_park(limiter, 2)
    assert limiter.acquire(3) == 2  # behind step 2
    limiter.release(1)
    assert sent == ["msg-2"]
    assert limiter.acquire(3) > 0


def test_hand_over_follows_priority_and_each_batch_cap(sent):
    limiter = limiter_of(sent, cap=2)
    normal, urgent, capped = Lane("n", NORMAL), Lane("u", HIGH), Lane("c", HIGH, max_inflight=1)
    assert limiter.acquire(1, capped) == 0 and limiter.acquire(2, normal) == 0
    refuse_and_park(limiter, 10, normal)
    refuse_and_park(limiter, 20, capped)  # its batch already holds its one slot
    refuse_and_park(limiter, 30, urgent)
    limiter.release(2)
    assert sent == ["msg-30"]  # the urgent batch first; the capped one is passed over
    limiter.release(30)
    assert sent == ["msg-30", "msg-10"]
    limiter.release(1)
    assert sent[-1] == "msg-20"
    assert limiter.held_by_batch() == {"n": 1, "c": 1}


def test_a_forgotten_batch_is_not_handed_slots(sent):
    limiter = limiter_of(sent, cap=1)
    assert limiter.acquire(1, Lane("a")) == 0
    refuse_and_park(limiter, 2, Lane("paused"))
    refuse_and_park(limiter, 3, Lane("a"))
    limiter.forget_batch("paused")
    limiter.release(1)
    assert sent == ["msg-3"]


def test_the_sweep_hands_over_expired_leases_and_sends_waiters_past_their_fallback(sent):
    import time

    limiter = InflightLimiter(fakeredis.FakeRedis(), max_inflight=1, lease=600.0, on_handover=sent)
    assert limiter.acquire(1) == 0
    refuse_and_park(limiter, 2, fallback_in=5.0)
    assert limiter.sweep() == 0 and sent == []
    # step 1's worker died: its lease runs out and the sweep gives the slot to step 2
    assert limiter.sweep(now=time.time() + 601) == 1
    assert sent == ["msg-2"] and limiter.holders() == {"2"}
    # a waiter nobody handed a slot to is sent at its fallback, to ask again itself
    refuse_and_park(limiter, 3, fallback_in=5.0)
    assert limiter.sweep(now=time.time() + 6) == 1
    assert sent == ["msg-2", "msg-3"] and limiter.holders() == {"2"} and limiter.parked() == 0


def test_under_random_releases_and_parkings_the_cap_holds_and_every_waiter_runs_once(sent):
    rng = random.Random(7)
    cap = 5
    limiter = limiter_of(sent, cap)
    lanes = [Lane("a"), Lane("b", weight=2.0), Lane("c", HIGH, max_inflight=2)]
    lane_of: dict[int, Lane] = {}
    held: set[int] = set()
    next_step = 0
    woken = 0

    def wake() -> None:  # the woken submits run: each finds its slot held
        nonlocal woken
        for message in sent[woken:]:
            step = int(message.split("-")[1])
            assert step not in held
            assert limiter.acquire(step, lane_of[step]) == 0
            held.add(step)
        woken = len(sent)

    for _ in range(400):
        if rng.random() < 0.6:
            next_step += 1
            lane_of[next_step] = lane = rng.choice(lanes)
            if limiter.acquire(next_step, lane) == 0:
                held.add(next_step)
            else:
                limiter.park(next_step, f"msg-{next_step}", 1e12)
        elif held:
            step = rng.choice(sorted(held))
            held.discard(step)
            limiter.release(step)
        wake()
        holders = {int(s) for s in limiter.holders()}
        assert holders == held and len(holders) <= cap
        per_batch = limiter.held_by_batch()
        assert per_batch.get("c", 0) <= 2
    assert len(sent) == len(set(sent)), "a parked message was sent twice"
    assert limiter.parked() > 0
    while held:  # drain: every parked waiter gets its turn
        step = min(held)
        held.discard(step)
        limiter.release(step)
        wake()
    assert limiter.parked() == 0 and len(sent) == len(set(sent))


def test_fallbacks_are_bounded():
    assert fallback(0.05) == pytest.approx(2.1)
    assert fallback(5.0) == 12.0
    assert fallback(600.0) == FALLBACK_MAX


def test_a_waiter_parked_for_many_minutes_keeps_its_place_ahead_of_later_ones(sent, monkeypatch):
    """Ten-minute videos at a cap of 2: the first waiter still goes first after 12 minutes in line (it used
    to lose its place after 10, went behind the newcomers and waited parked while slots were handed on)."""
    import tasks.limits as limits

    clock = [1_000_000.0]
    monkeypatch.setattr(limits.time, "time", lambda: clock[0])
    limiter = limiter_of(sent, cap=2)
    assert limiter.acquire(1) == 0 and limiter.acquire(2) == 0
    assert limiter.acquire(3) > 0
    for k in range(24):  # both re-ask at each 30 s fallback, re-parked each time, for 12 minutes
        clock[0] += 30.0
        limiter.refresh(1)  # the holders' looks keep their leases
        limiter.refresh(2)
        for waiter in (3, 4) if k >= 10 else (3,):  # step 4 comes 5 minutes after step 3
            assert limiter.acquire(waiter) > 0
            limiter.park(waiter, f"msg-{waiter}", clock[0] + 30.0)
    limiter.release(1)
    assert sent == ["msg-3"] and limiter.holders() == {"2", "3"}
