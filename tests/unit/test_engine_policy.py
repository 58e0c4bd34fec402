"""Pure engine policies: poll intervals, storage keys, global limits (fakeredis)."""

from __future__ import annotations

import fakeredis
import pytest

from letzflow.engine.polling import MIN_DELAY, next_poll_delay, update_expected
from storage.layout import extension, manifest_key, media_key, safe_segment
from tasks.limits import InflightLimiter, RateLimiter


@pytest.mark.parametrize(
    ("kind", "elapsed", "progress", "expected", "low", "high"),
    [
        ("image", 0.0, 0.0, 2.0, 2.0, 2.0),  # first look near the typical duration
        ("image", 1.0, 50.0, 2.0, 1.0, 1.2),  # half done after 1 s: about 1 s left
        ("image", 3.0, 75.0, 2.0, 1.0, 1.2),  # progress beats the stale estimate
        ("video", 0.0, 0.0, None, 45.0, 45.0),  # default video guess capped at the kind's maximum
        ("image", 0.0, 0.0, 0.01, MIN_DELAY, MIN_DELAY),  # never below the floor
        ("image", 100.0, 0.0, 10.0, 2.5, 20.0),  # past every estimate, no progress: gentle backoff
        ("image", 2.0, 99.0, 2.0, 0.1, 0.1),  # progress says it ends within ~20 ms: look in 0.1 s
        ("image", 1.5, 75.0, 2.0, 0.5, 0.55),  # 0.5 s left by progress, a few tens of ms margin
    ],
)
def test_next_poll_delay_table(kind, elapsed, progress, expected, low, high):
    delay = next_poll_delay(kind, elapsed, progress, expected)
    assert low <= delay <= high


def test_poll_delay_respects_visibility_ceiling():
    assert next_poll_delay("video", 0.0, 0.0, 3000.0, ceiling=12.0) == 12.0


def test_poll_delay_grows_with_polls_without_progress():
    delays = [next_poll_delay("image", 50.0, 0.0, 10.0, polls=n) for n in range(5)]
    assert delays == sorted(delays) and delays[-1] > delays[0]


def test_update_expected_is_a_weighted_mean():
    assert update_expected(None, 4.0) == 4.0
    assert update_expected(10.0, 20.0, weight=0.5) == 15.0


def test_media_key_layout():
    assert media_key("spring", "b1", "sku-001", 0, "generate", "png") == "spring/b1/sku-001/01-generate.png"
    assert media_key("spring", "b1", "sku-1", 2, "upscale", "jpg", variant=1, fanned_out=True) == (
        "spring/b1/sku-1/03-upscale-2.jpg"
    )
    assert media_key("s", "b", "i", 0, "edit", "png", output=2, outputs=3) == "s/b/i/01-edit-3.png"
    assert manifest_key("spring", "b1") == "spring/b1/manifest.json"


def test_unsafe_item_ids_cannot_escape_the_batch_folder():
    assert safe_segment("../../etc/passwd") == "etc_passwd"
    assert "/" not in safe_segment("a/b c")


@pytest.mark.parametrize(
    ("ctype", "url", "ext"),
    [
        ("image/png", "", "png"),
        ("image/jpeg", "x.png", "jpg"),
        ("video/mp4", "", "mp4"),
        ("application/octet-stream", "https://h/a/b.webm", "bin"),
        ("", "https://h/a/b.webm", "webm"),
    ],
)
def test_extension_trusts_content_type_first(ctype, url, ext):
    assert extension(ctype, url) == ext


@pytest.fixture
def redis_client():
    return fakeredis.FakeRedis()


def test_inflight_limiter_caps_and_releases(redis_client):
    limiter = InflightLimiter(redis_client, max_inflight=2)
    assert limiter.acquire(1) == 0
    assert limiter.acquire(2) == 0
    assert limiter.acquire(3) > 0  # refused: the number waiting
    assert limiter.acquire(1) == 0  # a holder asking again keeps its slot
    limiter.release(1)
    assert limiter.acquire(3) == 0
    assert limiter.holders() == {"2", "3"}


def test_inflight_lease_expiry_recovers_a_dead_workers_slot(redis_client):
    limiter = InflightLimiter(redis_client, max_inflight=1, lease=-1)  # leases already expired
    assert limiter.acquire(1) == 0
    assert limiter.acquire(2) == 0


def test_inflight_resync_matches_the_ledger(redis_client):
    limiter = InflightLimiter(redis_client, max_inflight=5)
    for step in (1, 2, 3):
        limiter.acquire(step)
    limiter.resync([2, 7])
    assert limiter.holders() == {"2", "7"}


def test_wait_hint_is_bounded(redis_client):
    limiter = InflightLimiter(redis_client, max_inflight=100)
    assert 0.05 <= limiter.wait_hint(1, 2.0) <= 15.0
    assert limiter.wait_hint(100_000, 30.0) == 15.0


def test_wait_hint_paces_waiters_by_the_slot_time(redis_client):
    limiter = InflightLimiter(redis_client, max_inflight=100)
    # slots held 2 s each, 100 of them: one frees up every 20 ms; place 50 asks again in about 1 s
    assert 0.9 * 1.0 <= limiter.wait_hint(50, 2.0) <= 1.1 * 1.0


def test_refused_asks_wait_by_how_long_slots_are_held(redis_client, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("tasks.limits.time.time", lambda: clock[0])
    limiter = InflightLimiter(redis_client, max_inflight=2)
    assert limiter.acquire_or_wait(1, 20.0) == 0
    assert limiter.acquire_or_wait(2, 20.0) == 0
    # no slot released yet: the expected job time sets the pace (20 s / 2 slots, place 1)
    assert 9.0 <= limiter.acquire_or_wait(3, 20.0) <= 11.0
    clock[0] += 4.0
    limiter.release(1)  # held 4 s
    assert limiter.acquire_or_wait(3, 20.0) == 0
    clock[0] += 4.0
    # measured: slots are held 4 s, so 2 slots free one every 2 s; place 1 (step 4) asks again in ~2 s
    assert 1.8 <= limiter.acquire_or_wait(4, 20.0) <= 2.2
    assert 3.6 <= limiter.acquire_or_wait(5, 20.0) <= 4.4  # place 2


def test_a_stale_long_slot_time_is_bounded_by_the_first_look_time(redis_client, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("tasks.limits.time.time", lambda: clock[0])
    limiter = InflightLimiter(redis_client, max_inflight=1)
    limiter.acquire(1)
    clock[0] += 15.0
    limiter.release(1)  # a cold-start slot: held 15 s
    limiter.acquire(2)
    # jobs are now looked at after 2 s: place 1 waits about 2 x 2 s, not 15 s
    assert 3.6 <= limiter.acquire_or_wait(3, 2.0) <= 4.4


def test_a_newcomer_does_not_take_a_slot_a_waiter_is_in_line_for(redis_client):
    limiter = InflightLimiter(redis_client, max_inflight=1)
    assert limiter.acquire(1) == 0
    assert limiter.acquire(2) == 1  # in line
    limiter.release(1)
    assert limiter.acquire(3) == 2  # the freed slot is waiter 2's: the newcomer joins the line
    assert limiter.acquire(2) == 0
    assert limiter.acquire(3) == 1


def test_any_waiter_in_line_takes_a_free_slot(redis_client):
    limiter = InflightLimiter(redis_client, max_inflight=1)
    limiter.acquire(1)
    assert limiter.acquire(2) == 1
    assert limiter.acquire(3) == 2
    limiter.release(1)
    assert limiter.acquire(3) == 0  # waiter 2 is late: the slot does not idle until it comes


def test_releasing_a_slot_not_held_teaches_nothing(redis_client):
    limiter = InflightLimiter(redis_client, max_inflight=1)
    for _ in range(5):
        limiter.release(99)
    assert limiter.acquire_or_wait(1, 2.0) == 0
    assert 1.8 <= limiter.acquire_or_wait(2, 2.0) <= 2.2  # nothing measured: 2 s / 1 slot


def test_rate_limiter_grants_a_burst_then_asks_to_wait(redis_client):
    limiter = RateLimiter(redis_client, rate=2.0, burst=2.0)
    assert limiter.take() == 0
    assert limiter.take() == 0
    wait = limiter.take()
    assert 0 < wait <= 0.5 + 1e-6


@pytest.mark.parametrize(
    ("first_look", "done", "elapsed", "progress", "within"),
    [
        (2.0, True, 1.9, 100, True),  # done by the look, which came within the first-look time
        (2.0, True, 2.5, 100, True),  # done at its first look, planned when the time was longer
        (2.0, True, 15.0, 100, None),  # a cold-start look at 15 s: the job ended any time before
        (2.0, False, 3.0, 90, False),  # 90 % after 3 s: about 3.3 s in all
        (2.0, False, 1.5, 50, False),  # half done after 1.5 s: about 3 s in all
        (2.0, False, 1.5, 80, True),  # 80 % after 1.5 s: about 1.9 s in all
        (2.0, False, 2.5, 0, False),  # running past the first-look time, no progress shown
        (2.0, False, 1.0, 0, None),  # looked at early with no progress: tells nothing
    ],
)
def test_what_a_first_look_tells_of_a_jobs_duration(first_look, done, elapsed, progress, within):
    from letzflow.engine.polling import ended_within

    assert ended_within(first_look, done, elapsed, progress) is within


def test_first_look_time_settles_at_a_low_quantile_without_swinging():
    """Jobs go out in waves of 100 (the in-flight cap): every job of a wave is looked at the first-look
    time of its submission, and the learning from its looks arrives only afterwards (the delay that made
    the old tracker swing)."""
    import random as _random

    from letzflow.engine.polling import (
        FIRST_LOOK_DONE_SHARE,
        ended_within,
        first_look_rate,
        update_first_look,
    )

    rng = _random.Random(3)
    learned = 0
    look = 15.0  # the cold default for images, for 2 s +- 30 % jobs
    history = []
    for _wave in range(40):
        planned = look
        for _ in range(100):
            duration = rng.uniform(1.4, 2.6)
            done = duration <= planned
            progress = 100.0 if done else int(100 * planned / duration)
            within = ended_within(look, done, planned, progress)
            if within is not None:
                look = update_first_look(look, within, 15.0, first_look_rate(100, learned))
                learned += 1
            history.append(look)
    assert history[199] < 2.0  # warm within 2 waves
    assert min(history) > 1.0  # the cold start does not drive it far below the durations
    settled = history[500:]
    expected = 1.4 + 1.2 * FIRST_LOOK_DONE_SHARE  # the 25 % quantile of the durations: 1.7 s
    assert abs(sum(settled) / len(settled) - expected) < 0.1
    assert min(settled) > 1.45 and max(settled) < 1.95


def test_the_step_shrinks_from_five_percent_to_about_one_per_wave():
    from letzflow.engine.polling import first_look_rate

    assert first_look_rate(100, 0) == 0.05  # cold: move fast
    assert first_look_rate(100, 400) == 0.01  # learned, 100 slots: one step's worth per wave of 100
    assert first_look_rate(10, 10_000) == 0.05  # 10 slots: a wave is 10 looks
    assert first_look_rate(0, 0) == 0.05


def test_a_waiter_asks_again_when_its_slot_is_predicted_to_free_up(redis_client, monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr("tasks.limits.time.time", lambda: clock[0])
    limiter = InflightLimiter(redis_client, max_inflight=2)
    limiter.acquire(1)
    limiter.acquire(2)
    limiter.expect_release(1, 1003.0)  # step 1's next look, expected to find its job done
    limiter.refresh(2, release_at=1001.5)
    assert limiter.acquire_or_wait(3, 20.0) == pytest.approx(1.55)  # first in line: the earliest release
    assert limiter.acquire_or_wait(4, 20.0) == pytest.approx(3.05)  # second: the second release
    assert 0.05 <= limiter.acquire_or_wait(5, 20.0) <= 15.0  # third: no prediction, paced as before
    limiter.release(2)
    clock[0] += 1.6
    assert limiter.acquire_or_wait(3, 20.0) == 0
    clock[0] += 2.0  # step 1's look is overdue: its release is near
    assert limiter.acquire_or_wait(4, 20.0) == pytest.approx(0.05)
