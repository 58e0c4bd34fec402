"""Pure engine policies: poll intervals, storage keys, global limits (fakeredis)."""

from __future__ import annotations

import fakeredis
import pytest

from storage.layout import extension, manifest_key, media_key, safe_segment
from tasks.limits import InflightLimiter, RateLimiter
from tasks.polling import MIN_DELAY, next_poll_delay, update_expected


@pytest.mark.parametrize(
    ("kind", "elapsed", "progress", "expected", "low", "high"),
    [
        ("image", 0.0, 0.0, 2.0, 2.0, 2.0),  # first look near the typical duration
        ("image", 1.0, 50.0, 2.0, 1.0, 1.2),  # half done after 1 s: about 1 s left
        ("image", 3.0, 75.0, 2.0, 1.0, 1.2),  # progress beats the stale estimate
        ("video", 0.0, 0.0, None, 45.0, 45.0),  # default video guess capped at the kind's maximum
        ("image", 0.0, 0.0, 0.01, MIN_DELAY, MIN_DELAY),  # never below the floor
        ("image", 100.0, 0.0, 10.0, 2.5, 20.0),  # past every estimate, no progress: gentle backoff
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
    assert 0.2 <= limiter.wait_hint(1, 2.0) <= 15.0
    assert limiter.wait_hint(100_000, 30.0) == 15.0


def test_rate_limiter_grants_a_burst_then_asks_to_wait(redis_client):
    limiter = RateLimiter(redis_client, rate=2.0, burst=2.0)
    assert limiter.take() == 0
    assert limiter.take() == 0
    wait = limiter.take()
    assert 0 < wait <= 0.5 + 1e-6
