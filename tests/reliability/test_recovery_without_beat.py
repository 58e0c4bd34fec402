"""A worker SIGKILLed with no beat running, default settings: the steps it held move again within 30 s.

60 jobs of 3 s at a cap of 20: the worker is killed as soon as 10 are in flight, so most of the batch is
open (and asserted to be) when it dies.

The dead worker's messages (running tasks, prefetched ones, polls waiting for their countdown) stay
unacknowledged in Redis until the visibility timeout (an hour by default): recovery must come from the
ledger. Every worker offers the reconciler; the next pass after the dead worker's heartbeat goes stale
re-kicks what it held.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from storage.models import STEP_TERMINAL, as_utc, utcnow
from tests.engine import ledger, run_batch, wait_batch, write_spec
from tests.reliability.harness import SIM, jobs_created, record, verify, wait_steps
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

#: The defaults a user runs with (no reliability shortcuts): reconciler every 5 s, visibility 1 h.
DEFAULTS = {"LETZAI_MAX_INFLIGHT": "20", "LETZAI_MAX_RPS": "200"}


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs={**SIM, "latency_image": 3.0}) as s:
        yield s


def test_sigkill_of_the_only_worker_without_beat_recovers_within_30_s(stack, tmp_path):
    first = stack.start_worker(env=DEFAULTS, name="only", pool="prefork", concurrency=4)
    before = jobs_created(stack)
    items = [{"id": f"nb-{k:02d}", "prompt": f"no beat product {k}"} for k in range(60)]
    batch_id = run_batch(stack, write_spec(tmp_path, "nobeat", [{"generate": {"width": 512}}], items))
    wait_steps(stack, batch_id, ("submitted", "running"), 10, timeout=30)
    led = ledger(stack)
    first.kill()
    killed = utcnow()
    # read after the kill: what the dead worker left open (steps that ended before it died are not held)
    held = {
        s.id: s.updated_at
        for s in led.steps_in(batch_id, ("planned", "submitting", "submitted", "running", "ready", "copying"))
    }
    t0 = time.monotonic()
    second = stack.start_worker(env=DEFAULTS, name="after", pool="prefork", concurrency=4)
    moved: dict[int, float] = {}
    while len(moved) < len(held) and time.monotonic() - t0 < 90:
        for st in led.steps_in(
            batch_id, (*STEP_TERMINAL, "planned", "submitting", "submitted", "running", "ready", "copying")
        ):
            if st.id in held and st.id not in moved and as_utc(st.updated_at) > killed:
                moved[st.id] = time.monotonic() - t0
        time.sleep(0.2)
    wait_batch(stack, batch_id, timeout=120)
    done_after = time.monotonic() - t0
    verdict = verify(stack, batch_id, before)
    second.stop()
    slowest = max(moved.values(), default=0.0)
    assert len(held) >= 20, f"only {len(held)} steps open at the kill: the test would prove nothing"
    assert len(moved) == len(held), f"{len(held) - len(moved)} held steps never moved"
    assert slowest <= 30.0, f"a held step moved again only after {slowest:.1f} s"
    record(
        "SIGKILL of the only worker, no beat, default settings",
        verdict,
        done_after,
        f"{len(held)} steps held; slowest moved again after {slowest:.1f} s",
    )
