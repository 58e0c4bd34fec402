"""Worker crashes: SIGKILL of workers holding every queue's tasks, a graceful stop, the in-flight cap,
duplicate deliveries and lost poll messages. Recovery comes from redelivery and the beat reconciler."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from celery import Celery

from storage.models import as_utc, utcnow
from tasks.liveness import EPOCH_KEY
from tests.engine import ledger, run_batch, wait_batch, write_spec
from tests.reliability.harness import (
    SIM,
    jobs_created,
    record,
    seed_expected_duration,
    start_beat,
    start_workers,
    stopwatch,
    verify,
    wait_steps,
    worker,
)
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

TWO_STEPS = [{"generate": {"width": 512, "height": 512}}, {"upscale": {"strength": 1, "size": 2}}]


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs=SIM) as s:
        start_beat(s)
        yield s


@pytest.fixture(autouse=True)
def _default_latency(stack):
    yield
    stack.sim.configure(latency_image=SIM["latency_image"])


def _stop_all(stack: EmbeddedStack) -> None:
    for w in stack.workers:
        if w.process is not None and w.process.alive:
            w.stop()


def _items(prefix: str, n: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}-{k:02d}", "prompt": f"{prefix} product photo {k}"} for k in range(n)]


def test_inflight_cap_holds_across_two_workers(stack, tmp_path):
    # first in the module: the simulator's max_concurrent is a high-water mark since it started
    # a sim cap one above ours: the sim then prunes finished jobs on every create (it only does so when
    # capped), so its max_concurrent is exact, and anything above 5 would show
    stack.sim.configure(latency_image=1.0, max_concurrent_jobs=6)
    cap = {"LETZAI_MAX_INFLIGHT": "5"}
    seed_expected_duration(stack, "image", 1.0)
    workers = start_workers(stack, {"env": cap, "name": "cap1"}, {"env": cap, "name": "cap2"})
    before = jobs_created(stack)
    batch_id = run_batch(stack, write_spec(tmp_path, "cap", TWO_STEPS[:1], _items("cap", 12)))
    with stopwatch() as took:
        # twice, the reconciler's crash sweep re-kicks every open item next to its own messages (as when
        # a worker's first pass finds Redis never used): two runs of a step race for it, and the one that
        # loses must not free the slot the winner's job holds
        _wait_planned(stack, batch_id, 12)
        swept = _crash_sweep(stack, batch_id) + _crash_sweep(stack, batch_id)
        wait_batch(stack, batch_id, timeout=90)
    counters = stack.sim.counters()
    verdict = verify(stack, batch_id, before)
    for w in workers:
        w.stop()
    stack.sim.configure(latency_image=SIM["latency_image"], max_concurrent_jobs=None)
    assert swept >= 2, f"the crash sweeps re-kicked {swept} items"  # the duplicates were really sent
    assert verdict.jobs_created == 12, verdict  # and paid for nothing
    assert 2 <= counters["max_concurrent"] <= 5, counters["max_concurrent"]
    record(
        "in-flight cap 5, 2 workers x 8 threads, 2 crash sweeps",
        verdict,
        took[0],
        f"sim max_concurrent={counters['max_concurrent']} re-kicked={swept}",
    )


def _crash_sweep(stack: EmbeddedStack, batch_id: str) -> int:
    """Make the reconciler's next pass (every second here) a crash sweep; how many items it re-kicked."""
    at = utcnow()
    stack.redis.client().delete(EPOCH_KEY)  # "Redis lost its data": every open item is sent again
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if stack.redis.client().exists(EPOCH_KEY):  # the pass began
            time.sleep(0.3)  # and has sent its messages
            break
        time.sleep(0.02)
    items = ledger(stack).items(batch_id)
    return sum(1 for i in items if i.kicked_at is not None and as_utc(i.kicked_at) > at)


def _wait_planned(stack: EmbeddedStack, batch_id: str, count: int) -> list:
    """The batch's ``count`` steps, once the ledger holds them all (``letzflow run`` records them first)."""
    led = ledger(stack)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        steps = led.steps_in(batch_id, ("planned", "submitting", "submitted", "running", "ready", "done"))
        if len(steps) >= count:
            return steps
        time.sleep(0.02)
    raise AssertionError(f"the batch has not {count} steps after 30 s: {led.step_counts(batch_id)}")


def test_sigkill_of_workers_holding_every_queue_then_a_new_worker_finishes(stack, tmp_path):
    queues = ("submit", "poll", "media", "batch")
    dedicated = start_workers(stack, *({"name": f"k-{q}", "queues": q, "concurrency": 2} for q in queues))
    before = jobs_created(stack)
    batch_id = run_batch(stack, write_spec(tmp_path, "sigkill", TWO_STEPS, _items("kill", 16)))
    wait_steps(stack, batch_id, ("ready", "copying"), 1)
    led = ledger(stack)
    caught = {
        st: len(led.steps_in(batch_id, (st,)))
        for st in ("submitting", "submitted", "running", "ready", "copying")
    }
    for w in dedicated:
        w.kill()
    killed_at = time.monotonic()
    replacement = worker(stack, name="k-after")
    wait_batch(stack, batch_id, timeout=150)
    recovered = time.monotonic() - killed_at
    verdict = verify(stack, batch_id, before)
    replacement.stop()
    busy = ",".join(f"{k}={v}" for k, v in caught.items() if v)
    record("SIGKILL 4 single-queue workers", verdict, recovered, f"steps caught: {busy}")


def test_graceful_stop_mid_batch_loses_nothing(stack, tmp_path):
    first = worker(stack, name="t-first")
    before = jobs_created(stack)
    batch_id = run_batch(stack, write_spec(tmp_path, "sigterm", TWO_STEPS, _items("term", 16)))
    wait_steps(stack, batch_id, ("submitted", "running"), 3)
    first.stop()  # SIGTERM: warm shutdown, running tasks finish or go back to the queue
    stopped_at = time.monotonic()
    second = worker(stack, name="t-second")
    wait_batch(stack, batch_id, timeout=150)
    recovered = time.monotonic() - stopped_at
    verdict = verify(stack, batch_id, before)
    second.stop()
    record("SIGTERM (warm stop) mid-batch", verdict, recovered)


SPLIT_STEPS = [
    {"generate": {"width": 512, "height": 512}},
    {"edit": {"mode": "context", "prompt": "on a shelf", "imageCompletionsCount": 3}},
    {"upscale": {"strength": 1, "size": 2}},
]


def test_sigkill_while_branches_run_loses_no_branch_and_pays_for_none_twice(stack, tmp_path):
    first = worker(stack, name="b-first")
    before = jobs_created(stack)
    batch_id = run_batch(stack, write_spec(tmp_path, "branchkill", SPLIT_STEPS, _items("branch", 8)))
    led = ledger(stack)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # kill once some branch upscales are in flight
        branch_steps = [s for s in led.steps_in(batch_id, ("submitting", "submitted", "running")) if s.branch]
        if len(branch_steps) >= 3:
            break
        time.sleep(0.05)
    else:
        raise AssertionError(f"no branch step in flight: {led.step_counts(batch_id)}")
    first.kill()
    killed_at = time.monotonic()
    second = worker(stack, name="b-second")
    wait_batch(stack, batch_id, timeout=150)
    recovered = time.monotonic() - killed_at
    verdict = verify(stack, batch_id, before)
    second.stop()
    assert verdict.jobs_created == 8 * (1 + 1 + 3)  # every branch's upscale, each once
    record(
        "SIGKILL while branches run (edit x3)",
        verdict,
        recovered,
        f"branch steps caught: {len(branch_steps)}",
    )


def _drop_unacked(stack: EmbeddedStack, queue: str) -> int:
    """Remove the broker's unacknowledged messages routed to ``queue`` (so nothing redelivers them)."""
    assert stack.redis is not None
    r = stack.redis.client()
    dropped = 0
    for tag, raw in r.hgetall("unacked").items():
        payload = json.loads(raw)
        if payload[2] == queue:
            r.hdel("unacked", tag)
            r.zrem("unacked_index", tag)
            dropped += 1
    return dropped


def test_duplicate_deliveries_and_a_lost_poll_queue_change_no_outcome(stack, tmp_path):
    # 3 s jobs: several are in flight together however slowly a loaded machine submits them
    stack.sim.configure(latency_image=3.0)
    main, poller = start_workers(
        stack,
        {"name": "d-main", "queues": "submit,media,batch"},
        {"name": "d-poll", "queues": "poll", "concurrency": 4},
    )
    before = jobs_created(stack)
    batch_id = run_batch(stack, write_spec(tmp_path, "dupes", TWO_STEPS[:1], _items("dup", 8)))
    wait_steps(stack, batch_id, ("submitted", "running"), 4)
    app = Celery(broker=stack.env["REDIS_URL"])
    led = ledger(stack)
    steps = led.steps_in(
        batch_id, ("planned", "submitting", "submitted", "running", "ready", "copying", "done")
    )
    for st in steps:  # every message of every step delivered twice more
        for name, queue in (("submit_step", "submit"), ("poll_step", "poll"), ("copy_outputs", "media")):
            app.send_task(f"letzflow.{name}", args=[st.id], queue=queue)
            app.send_task(f"letzflow.{name}", args=[st.id], queue=queue)
    app.close()
    poller.kill()  # the poll worker dies with its countdown messages ...
    r = stack.redis.client()
    dropped = _drop_unacked(stack, "poll") + int(r.llen("poll"))
    r.delete("poll")  # ... and the poll queue and its unacked copies are gone: nothing will redeliver them
    lost_at = time.monotonic()
    replacement = worker(stack, name="d-poll2", queues="poll", concurrency=4)
    wait_batch(stack, batch_id, timeout=150)
    recovered = time.monotonic() - lost_at
    verdict = verify(stack, batch_id, before)
    assert all(i.finish_runs == 1 for i in led.items(batch_id))
    for w in (main, replacement):
        w.stop()
    record(
        "duplicate deliveries + poll messages lost", verdict, recovered, f"{dropped} poll messages dropped"
    )


@pytest.fixture(autouse=True)
def _no_leftover_workers(stack) -> Iterator[None]:
    yield
    _stop_all(stack)


def test_sigkill_with_two_lanes_in_flight_recovers_both_and_their_shares(stack, tmp_path):
    from tasks.limits import PER_BATCH_KEY

    cap = {"LETZAI_MAX_INFLIGHT": "8"}
    stack.sim.configure(latency_image=2.0)  # several jobs in flight together, even on a loaded machine
    first = worker(stack, env=cap, name="lanes-first")
    before = jobs_created(stack)
    normal = run_batch(stack, write_spec(tmp_path, "lane-normal", TWO_STEPS[:1], _items("ln", 24)))
    high = run_batch(
        stack, write_spec(tmp_path, "lane-high", TWO_STEPS[:1], _items("lh", 12), priority="high", weight=2)
    )
    wait_steps(stack, high, ("submitted", "running"), 2)
    first.kill()
    killed_at = time.monotonic()
    second = worker(stack, env=cap, name="lanes-second")
    wait_batch(stack, high, timeout=150)
    wait_batch(stack, normal, timeout=150)
    recovered = time.monotonic() - killed_at
    led = ledger(stack)
    paid = {b: sum(1 for s in led.steps_in(b, ("done",)) if s.remote_id) for b in (high, normal)}
    # each batch's verdict counts the other's jobs as known: together, jobs created = steps paid
    verify(stack, high, before, other_jobs=paid[normal])
    both = verify(stack, normal, before, other_jobs=paid[high])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the reconciler's resync gives the dead worker's slots back
        held = stack.redis.client().hgetall(PER_BATCH_KEY)  # type: ignore[union-attr]
        if all(int(v) <= 0 for v in held.values()):
            break
        time.sleep(0.5)
    second.stop()
    assert all(int(v) <= 0 for v in held.values()), held
    record("SIGKILL with a high and a normal batch in flight", both, recovered, f"paid {paid}")
