"""The simulator's webhook plan (faults, shapes, wrong tokens) and its time-ordered queue, without HTTP."""

from __future__ import annotations

import random
import threading
import time

import pytest

from letzai.sim.config import SimConfig
from letzai.sim.jobs import Job, plan_job
from letzai.sim.webhooks import Delivery, DeliveryQueue, plan_delivery, shaped, wrong_token


def job(never: bool = False) -> Job:
    config = SimConfig(jitter=0.0, latency_image=1.0, never_finish_rate=1.0 if never else 0.0)
    return plan_job("image", 1, 7, config, {"prompt": "p"})


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://h:1/hooks/0123456789abcdef", "http://h:1/hooks/"),
        ("https://h/a/b/Tok_en-9?x=1", "https://h/a/b/"),
        ("http://h/hooks/abc/", "http://h/hooks/"),
    ],
)
def test_wrong_token_replaces_only_the_last_segment_keeping_its_length(url: str, kept: str) -> None:
    changed = wrong_token(url, random.Random(1))
    assert changed != url and changed.startswith(kept)
    token = url.removeprefix(kept).split("?")[0].rstrip("/")
    fake = changed.removeprefix(kept).split("?")[0].rstrip("/")
    assert len(fake) == len(token) and fake != token
    assert changed.endswith("?x=1") == url.endswith("?x=1") and changed.endswith("/") == url.endswith("/")


def test_a_hex_token_is_replaced_by_hex_and_a_url_without_token_is_kept() -> None:
    fake = wrong_token("http://h/hooks/deadbeef", random.Random(3)).rsplit("/", 1)[1]
    assert set(fake) <= set("0123456789abcdef") and len(fake) == 8
    assert wrong_token("http://h", random.Random(3)) == "http://h"
    assert wrong_token("http://h/", random.Random(3)) == "http://h/"


def test_calm_knobs_draw_nothing_from_the_fault_randomness() -> None:
    rng = random.Random(5)
    before = rng.getstate()
    the_job = job()
    due, delivery = plan_delivery(rng, SimConfig(webhook_body="object"), the_job, "http://h/t/abc")
    assert rng.getstate() == before
    assert (delivery.lost, delivery.duplicate, delivery.url_ok, delivery.shape) == (
        False,
        False,
        True,
        "object",
    )
    assert due == delivery.ends_at == the_job.finish_time


def test_rates_of_one_apply_every_fault_and_the_delay_is_added() -> None:
    config = SimConfig(
        webhook_lost_rate=1.0,
        webhook_duplicate_rate=1.0,
        webhook_wrong_token_rate=1.0,
        webhook_delay=2.0,
        webhook_delay_jitter=0.5,
        webhook_body="event",
    )
    the_job = job()
    due, delivery = plan_delivery(random.Random(5), config, the_job, "http://h/t/abc")
    assert delivery.lost and delivery.duplicate and not delivery.url_ok and delivery.shape == "event"
    assert the_job.finish_time is not None
    assert the_job.finish_time + 2.0 <= due <= the_job.finish_time + 2.5


def test_the_same_seed_plans_the_same_faults() -> None:
    config = SimConfig(webhook_lost_rate=0.5, webhook_duplicate_rate=0.5, webhook_wrong_token_rate=0.5)

    def plans(seed: int) -> list[tuple[object, ...]]:
        rng = random.Random(seed)
        out = []
        for _ in range(20):
            _, d = plan_delivery(rng, config, job(), "http://h/t/abcdef")
            out.append((d.lost, d.duplicate, d.target, d.shape))
        return out

    assert plans(9) == plans(9) != plans(10)
    assert {shape for *_, shape in plans(9)} == {"object", "event"}


def test_a_job_that_never_ends_cannot_be_planned() -> None:
    with pytest.raises(ValueError, match="never ends"):
        plan_delivery(random.Random(1), SimConfig(), job(never=True), "http://h/t/a")


def test_the_event_shape_wraps_the_object_and_names_kind_and_status() -> None:
    obj = {"id": "x", "status": "failed"}
    assert shaped("event", "video", obj) == {"event": "video.failed", "data": obj}
    assert shaped("object", "video", obj) is obj


def delivery(job_id: str, ends_at: float = 0.0) -> Delivery:
    return Delivery(job_id, "image", "u", "u", "object", False, False, ends_at)


def test_the_queue_hands_out_deliveries_in_due_order_when_due() -> None:
    lock = threading.RLock()
    queue = DeliveryQueue(lock)
    now = time.monotonic()
    for name, due in (("late", now + 0.15), ("early", now + 0.05), ("past", now - 1)):
        queue.push(due, delivery(name), lambda d: True, cap=10)
    taken = [queue.take_due() for _ in range(3)]
    assert [d.job_id for d in taken if d] == ["past", "early", "late"]
    assert time.monotonic() >= now + 0.15


def test_clear_forgets_pending_ones_and_ends_the_generation_of_taken_ones() -> None:
    queue = DeliveryQueue(threading.RLock())
    taken = delivery("a")
    queue.push(0.0, taken, lambda d: True, cap=10)
    assert queue.take_due() is taken
    queue.push(time.monotonic() + 60, delivery("b"), lambda d: True, cap=10)
    queue.clear()
    assert len(queue) == 0 and not queue.current_generation(taken)


def test_the_queue_purges_forgotten_jobs_once_it_holds_twice_its_cap() -> None:
    queue = DeliveryQueue(threading.RLock())
    alive = {"keep"}
    queue.push(1.0, delivery("keep"), lambda d: d.job_id in alive, cap=2)
    for n in range(3):
        queue.push(2.0 + n, delivery(f"gone{n}"), lambda d: d.job_id in alive, cap=2)
    assert len(queue) == 4
    queue.push(9.0, delivery("new"), lambda d: d.job_id in alive, cap=2)
    assert sorted(entry[2].job_id for entry in queue.heap) == ["keep", "new"]


def test_stop_releases_a_waiting_taker() -> None:
    queue = DeliveryQueue(threading.RLock())
    result: list[object] = []
    taker = threading.Thread(target=lambda: result.append(queue.take_due()))
    taker.start()
    time.sleep(0.05)
    queue.stop()
    taker.join(timeout=1)
    assert result == [None]
