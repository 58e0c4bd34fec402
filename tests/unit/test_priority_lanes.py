"""Priority lanes and weighted fair share in the in-flight limiter (its real Lua script, on fakeredis)."""

from __future__ import annotations

import random
from collections import Counter, deque

import fakeredis
import pytest

from tasks.limits import InflightLimiter, Lane

HIGH, NORMAL, LOW = 9, 5, 1


@pytest.fixture
def limiter() -> InflightLimiter:
    return InflightLimiter(fakeredis.FakeRedis(), max_inflight=4)


def run(limiter: InflightLimiter, lanes: dict[str, Lane], grants: int, seed: int = 3) -> Counter[str]:
    """Every batch keeps steps waiting; each time a slot frees, every waiter asks once, in random order."""
    rng = random.Random(seed)
    next_id = {name: n * 100_000 for n, name in enumerate(lanes)}
    waiting = {name: deque() for name in lanes}
    held: deque[tuple[str, int]] = deque()
    won: Counter[str] = Counter()

    def top_up() -> None:
        for name in lanes:
            while len(waiting[name]) < 6:
                next_id[name] += 1
                waiting[name].append(next_id[name])

    for _round in range(grants * 10):
        if sum(won.values()) >= grants:
            break
        top_up()
        if len(held) >= limiter.max_inflight:
            _name, step = held.popleft()
            limiter.release(step)
        askers = [(name, s) for name in lanes for s in waiting[name]]
        rng.shuffle(askers)
        for name, step in askers:
            if limiter.acquire(step, lanes[name]) == 0:
                waiting[name].remove(step)
                held.append((name, step))
                won[name] += 1
    else:
        raise AssertionError(f"slots stopped being granted: {won}")
    return won


def drain(limiter: InflightLimiter) -> None:
    for step in limiter.holders():
        limiter.release(int(step))


def test_a_high_priority_batch_gets_every_free_slot_while_it_waits(limiter):
    won = run(limiter, {"big": Lane("big", NORMAL), "urgent": Lane("urgent", HIGH)}, 200)
    assert won["urgent"] >= 196 and won["big"] <= 4  # the big batch only had the slots taken before


def test_equal_batches_share_the_slots_evenly(limiter):
    won = run(limiter, {"a": Lane("a"), "b": Lane("b")}, 200)
    assert 0.45 <= won["a"] / 200 <= 0.55, won


def test_weights_two_to_one_give_two_thirds(limiter):
    won = run(limiter, {"a": Lane("a", weight=2), "b": Lane("b", weight=1)}, 300)
    assert 0.62 <= won["a"] / 300 <= 0.72, won


def test_a_batch_never_holds_more_than_its_own_cap(limiter):
    lanes = {"capped": Lane("capped", HIGH, max_inflight=1), "other": Lane("other", LOW)}
    run(limiter, lanes, 50)
    assert limiter.held_by_batch().get("capped", 0) <= 1
    assert limiter.held_by_batch().get("other", 0) >= 3  # work-conserving: the rest go to the low lane


def test_a_low_batch_alone_uses_the_whole_cap(limiter):
    for step in range(4):
        assert limiter.acquire(step, Lane("low", LOW)) == 0
    assert limiter.acquire(99, Lane("low", LOW)) > 0
    assert limiter.held_by_batch() == {"low": 4}


def test_a_batch_that_joins_late_neither_starves_nor_is_starved(limiter):
    old = {"old": Lane("old")}
    run(limiter, old, 300)
    drain(limiter)
    won = run(limiter, {"old": Lane("old"), "new": Lane("new")}, 200, seed=5)
    assert 0.4 <= won["new"] / 200 <= 0.6, won


def test_a_paused_batch_hands_its_place_back_at_once(limiter):
    for step in range(4):
        limiter.acquire(step, Lane("filler", LOW))
    assert limiter.acquire(10, Lane("paused", HIGH)) > 0  # in line, ahead of everyone
    assert limiter.acquire(20, Lane("normal")) > 0
    limiter.forget_batch("paused")
    limiter.release(0)
    assert limiter.acquire(20, Lane("normal")) == 0  # not held back by a batch that stopped asking
