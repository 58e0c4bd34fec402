"""The cold start as pure policy: early first looks, progress estimates, seeding, backoff, duration keys."""

from __future__ import annotations

import random

import pytest

from letzflow.engine.duration_keys import duration_key, fallback_keys, kind_of
from letzflow.engine.polling import (
    COLD_FIRST_LOOK,
    COLD_MIN_LOOK,
    MAX_DELAY,
    SEED_SAMPLES,
    cold_look_after_done,
    duration_estimate,
    ended_within,
    first_look_rate,
    next_poll_delay,
    seeded_first_look,
    update_first_look,
    what_a_look_teaches,
)


@pytest.mark.parametrize(
    ("elapsed", "progress", "low", "high"),
    [
        (1.0, 50, 1.97, 1.99),  # half done after 1 s: a 2 s job
        (1.0, 99, 1.0, 1.01),
        (32.0, 5, 580.0, 585.0),  # a 10 min video seen at 5 % after 32 s
        (0.3, 60, 0.49, 0.5),  # a 0.5 s image
    ],
)
def test_progress_tells_a_jobs_whole_duration(elapsed, progress, low, high):
    estimate = duration_estimate(elapsed, progress)
    assert estimate is not None and low <= estimate <= high


@pytest.mark.parametrize(("elapsed", "progress"), [(1.0, 0), (1.0, 3), (1.0, 100), (0.0, 50)])
def test_too_little_progress_is_no_estimate(elapsed, progress):
    assert duration_estimate(elapsed, progress) is None


@pytest.mark.parametrize(
    ("samples", "first_look", "done", "elapsed", "progress", "had_progress", "lesson"),
    [
        (0, True, False, 1.0, 50, False, ("sample", 1.0 * 100 / 50.5)),  # the cold look's estimate
        (0, True, True, 1.0, 100, False, ("cold", 1.0)),  # done before the cold look: look sooner
        (0, False, False, 4.0, 40, False, ("sample", 4.0 * 100 / 40.5)),  # first progress on a later look
        (0, False, False, 6.0, 60, True, None),  # it gave its estimate already
        (0, True, False, 1.0, 0, False, None),  # still new: tells nothing yet
        (3, True, True, 1.7, 100, False, ("sample", 1.7)),  # seeding: a done first look bounds it
        (3, False, True, 2.1, 100, True, None),  # done at a later look: nothing new
        (SEED_SAMPLES, True, False, 1.7, 80, False, ("track", 0.0)),  # seeded: the tracker learns
        (SEED_SAMPLES, False, False, 1.9, 90, True, None),
    ],
)
def test_what_a_look_teaches_table(samples, first_look, done, elapsed, progress, had_progress, lesson):
    got = what_a_look_teaches(
        samples=samples,
        first_look=first_look,
        done=done,
        elapsed=elapsed,
        progress=progress,
        had_progress=had_progress,
    )
    if lesson is None or got is None:
        assert got == lesson
    else:
        assert got[0] == lesson[0] and got[1] == pytest.approx(lesson[1])


def test_a_first_wave_done_at_the_cold_look_halves_it_once():
    look = COLD_FIRST_LOOK
    for elapsed in (1.02, 1.01, 1.05, 1.03):  # every job of the wave, all at about the same look
        look = cold_look_after_done(look, elapsed)
    assert look == pytest.approx(0.505)
    assert cold_look_after_done(0.12, 0.12) == COLD_MIN_LOOK


def test_seeded_first_look_is_the_low_quantile_of_the_estimates():
    assert seeded_first_look([2.0]) == 2.0
    assert seeded_first_look([1.0, 2.0, 3.0, 4.0, 5.0]) == 2.0
    assert seeded_first_look([5.0, 1.0, 3.0]) == 2.0  # order does not matter
    with pytest.raises(ValueError):
        seeded_first_look([])


@pytest.mark.parametrize(
    ("elapsed", "progress", "low", "high"),
    [
        (1.0, 0, 1.0, 1.0),  # still new after the cold look: look again after as long again
        (4.0, 0, 4.0, 4.0),
        (1.0, 50, 1.0, 1.05),  # progress predicts the end: the next look comes then
        (200.0, 0, MAX_DELAY["image"], MAX_DELAY["image"]),  # doubling never passes the kind's bound
    ],
)
def test_cold_looks_double_without_progress_and_follow_it_with(elapsed, progress, low, high):
    assert low <= next_poll_delay("image", elapsed, progress, None, cold=True) <= high


def test_cold_backoff_never_passes_the_ceiling():
    assert next_poll_delay("video", 300.0, 0, None, cold=True, ceiling=12.0) == 12.0


def _cold_job_looks(duration: float, new_until: float = 0.0, ceiling: float = 360.0) -> list[float]:
    """The look times of one cold job (sim-like progress: linear, whole percents, 0 while ``new``)."""
    kind = "video" if duration > 60 else "image"
    looks, t = [], COLD_FIRST_LOOK
    for _ in range(100):
        looks.append(t)
        if t >= duration:
            return looks
        progress = 0 if t < new_until else int(100 * t / duration)
        t += next_poll_delay(kind, t, progress, None, cold=True, ceiling=ceiling, polls=len(looks))
    raise AssertionError("no end")


@pytest.mark.parametrize(
    ("duration", "new_until", "max_looks", "max_late"),
    [
        (0.5, 0.0, 1, 0.5),  # ended before the cold look: one look, half a second late (once)
        (2.0, 0.0, 2, 0.1),  # the cold look reads 50 %, the second look comes at the end
        (15.0, 0.0, 3, 0.3),  # 6 % at 1 s: one percent is 2.4 s, so first a look at the earliest end
        (15.0, 4.0, 5, 0.5),  # a real API's "new" at progress 0 for 4 s: looks at 1, 2, 4, then by progress
        (120.0, 0.0, 5, 1.5),
        (600.0, 30.0, 20, 5.0),  # a 10 min video: every 45 s (the video bound) once it shows progress
    ],
)
def test_a_cold_job_of_any_duration_is_seen_done_soon_after_its_end(duration, new_until, max_looks, max_late):
    looks = _cold_job_looks(duration, new_until)
    assert len(looks) <= max_looks
    assert looks[-1] - duration <= max_late


def test_a_cold_start_learns_in_one_wave_and_then_settles():
    """A cold wave of 50 jobs of 2 s +- 30 %: their cold looks seed the first-look time at about the low
    quantile at once (before the wave ends); the tracker then holds it there."""
    rng = random.Random(5)
    estimates = []
    for _ in range(SEED_SAMPLES):
        duration = rng.uniform(1.4, 2.6)
        progress = int(100 * COLD_FIRST_LOOK / duration)
        lesson = what_a_look_teaches(
            samples=len(estimates),
            first_look=True,
            done=False,
            elapsed=COLD_FIRST_LOOK,
            progress=progress,
            had_progress=False,
        )
        assert lesson is not None and lesson[0] == "sample"
        estimates.append(lesson[1])
    look = seeded_first_look(estimates)
    assert 1.55 <= look <= 1.9  # the 25 % quantile of U(1.4, 2.6) is 1.7 s
    learned = 100
    history = []
    for _wave in range(10):
        planned = look
        for _ in range(50):
            duration = rng.uniform(1.4, 2.6)
            done = duration <= planned
            within = ended_within(look, done, planned, 100.0 if done else int(100 * planned / duration))
            if within is not None:
                look = update_first_look(look, within, 15.0, first_look_rate(50, learned))
                learned += 1
            history.append(look)
    assert min(history) >= 1.45 and max(history) <= 2.0


@pytest.mark.parametrize(
    ("kind", "spec_kind", "params", "key"),
    [
        ("image", "generate", {"width": 520, "height": 520}, "image/default/0.6mp"),
        ("image", "generate", {}, "image/default/3mp"),  # 1600 x 1600 by default
        (
            "image",
            "generate",
            {"mode": "turbo", "quality": 3, "width": 1024, "height": 1024},
            "image/turbo/1.1mp-q3",
        ),
        ("image", "generate", {"baseModel": "flux2", "mode": "4k"}, "image/flux2.4k/3mp"),
        ("image_edit", "skin_fix", {"intensity": 3}, "image_edit/skin/any"),
        (
            "image_edit",
            "edit",
            {"mode": "context", "settings": {"resolution": "4k"}},
            "image_edit/context/4k",
        ),
        ("upscale", "upscale", {"strength": 1, "size": 4}, "upscale/default/x4"),
        ("video", "animate", {"settings": {"mode": "default", "duration": 4}}, "video/default/4s"),
        (
            "video",
            "animate",
            {"settings": {"mode": "video-veo31", "duration": 8, "resolution": "1080p", "highQuality": True}},
            "video/video-veo31/8s-1080p-hq",
        ),
    ],
)
def test_duration_keys_tell_kinds_modes_and_sizes_apart(kind, spec_kind, params, key):
    assert duration_key(kind, spec_kind, params) == key
    assert kind_of(key) == kind
    assert fallback_keys(key) == (key, kind)
    assert fallback_keys(kind) == (kind,)


def test_odd_spec_values_make_safe_keys():
    key = duration_key("image", "generate", {"mode": "Sigma / Fast", "width": "x"})
    assert key == "image/sigma___fast/3mp"


@pytest.mark.parametrize(
    ("first_look", "share"), [(20.0, 0.25), (1.5, 0.25), (1.0, 0.5), (0.5, 0.75), (0.1, 0.75)]
)
def test_short_jobs_are_first_looked_at_later_in_their_spread(first_look, share):
    from letzflow.engine.polling import done_share

    assert done_share(first_look) == pytest.approx(share)


def test_short_jobs_settle_where_most_first_looks_find_them_done():
    rng = random.Random(9)
    look, learned, history = 0.3, 100, []
    for _ in range(3000):
        duration = rng.uniform(0.35, 0.65)  # 0.5 s +- 30 %
        done = duration <= look
        within = ended_within(look, done, look, 100.0 if done else int(100 * look / duration))
        if within is not None:
            look = update_first_look(look, within, 15.0, first_look_rate(50, learned))
            learned += 1
        history.append(look)
    settled = history[1000:]
    assert 0.53 <= sum(settled) / len(settled) <= 0.6  # about the 75 % quantile (0.575 s), not 0.43 s
