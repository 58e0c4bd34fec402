"""Redis outages: a restart with its data kept, and a restart that lost everything."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.engine import run_batch, wait_batch, write_spec
from tests.reliability.harness import (
    SIM,
    ensure_beat,
    jobs_created,
    record,
    start_beat,
    verify,
    wait_steps,
    worker,
)
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

STEPS = [{"generate": {"width": 512, "height": 512}}, {"upscale": {"strength": 1, "size": 2}}]


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs=SIM, redis_persist=True) as s:
        start_beat(s)
        # prefork, as `letzflow worker` runs: a threads-pool worker cannot cancel its tasks on a broker
        # connection loss (NotImplementedError in the consumer) and may stop consuming after a restart
        worker(s, name="r-main", pool="prefork", concurrency=4)
        yield s


def _items(prefix: str, n: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}-{k:02d}", "prompt": f"{prefix} still life {k}"} for k in range(n)]


# One rerun: on a heavily loaded machine the module's fresh worker has twice (of six full runs) consumed
# nothing for 60 s before any fault was injected; see docs/reliability.md, "Known flake". A rerun that
# also fails is a failure.
@pytest.mark.flaky(reruns=1, reruns_delay=2)
@pytest.mark.parametrize(
    ("keep_data", "fault"), [(True, "Redis restarted (data kept)"), (False, "Redis lost (restarted empty)")]
)
def test_batch_survives_a_redis_restart(stack, tmp_path, keep_data, fault):
    before = jobs_created(stack)
    # a name of this attempt's own: a rerun with the same spec would find the first attempt's batch
    name = f"{'redis-kept' if keep_data else 'redis-lost'}-{tmp_path.name[-8:]}"
    batch_id = run_batch(stack, write_spec(tmp_path, name, STEPS, _items(name, 12)))
    wait_steps(stack, batch_id, ("submitted", "running"), 4)
    keys_before = stack.redis.client().dbsize()
    stack.redis.restart(keep_data=keep_data)
    restarted_at = time.monotonic()
    time.sleep(1)
    ensure_beat(stack)
    wait_batch(stack, batch_id, timeout=150)
    recovered = time.monotonic() - restarted_at
    verdict = verify(stack, batch_id, before)
    assert all(w.process is not None and w.process.alive for w in stack.workers), "a worker died"
    record(fault, verdict, recovered, f"{keys_before} Redis keys before")
