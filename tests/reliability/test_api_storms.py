"""LetzAI fault storms from the simulator, a 402 halfway, and the S3 endpoint hanging during copies."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.engine import cli, run_batch, wait_batch, write_spec
from tests.reliability.harness import (
    CLEAN_SIM,
    SIM,
    jobs_created,
    record,
    start_beat,
    stopwatch,
    verify,
    wait_steps,
    worker,
)
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

GENERATE = [{"generate": {"width": 512, "height": 512}}]


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs=SIM) as s:
        start_beat(s)
        yield s


@pytest.fixture(autouse=True)
def clean(stack) -> Iterator[None]:
    stack.sim.configure(**CLEAN_SIM)
    yield
    stack.sim.configure(**CLEAN_SIM)
    for w in stack.workers:
        if w.process is not None and w.process.alive:
            w.stop()


def _items(prefix: str, n: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}-{k:02d}", "prompt": f"{prefix} lamp on a desk {k}"} for k in range(n)]


def test_storm_of_429_5xx_resets_and_slow_answers_ends_with_every_item_done_once(stack, tmp_path):
    worker(stack, {"LETZAI_TIMEOUT": "1"}, name="storm")
    stack.sim.configure(
        rate_limit_rate=0.3,
        retry_after=0.5,
        error_5xx_rate=0.2,
        reset_rate=0.1,
        slow_rate=0.1,
        slow_seconds=2.0,
    )
    before = stack.sim.counters()
    with stopwatch() as took:
        batch_id = run_batch(stack, write_spec(tmp_path, "storm", GENERATE, _items("storm", 12)))
        wait_batch(stack, batch_id, timeout=150)
    after = stack.sim.counters()
    verdict = verify(stack, batch_id, before["jobs_created_total"])
    injected = {
        k: after["injected"][k] - before["injected"][k] for k in ("rate_limit", "error_5xx", "reset", "slow")
    }
    # 429s and 5xx surely happened; resets and slow answers (10 % each) at least once between them
    assert injected["rate_limit"] and injected["error_5xx"] and injected["reset"] + injected["slow"], injected
    record(
        "API storm: 30% 429, 20% 5xx, resets, slow > timeout",
        verdict,
        took[0],
        " ".join(f"{k}={v}" for k, v in injected.items()),
    )


def test_a_long_429_spell_delays_submissions_but_never_fails_them(stack, tmp_path):
    # every call refused for ~4 s (about 10 Retry-After periods): a 429 created nothing, so it must not
    # use up a step's submission attempts
    worker(stack, name="spell")
    stack.sim.configure(rate_limit_rate=1.0, retry_after=0.3)
    before = stack.sim.counters()
    with stopwatch() as took:
        batch_id = run_batch(stack, write_spec(tmp_path, "spell", GENERATE, _items("spell", 4)))
        time.sleep(4)
        stack.sim.configure(rate_limit_rate=0.0)
        wait_batch(stack, batch_id, timeout=60)
    refused = stack.sim.counters()["injected"]["rate_limit"] - before["injected"]["rate_limit"]
    verdict = verify(stack, batch_id, before["jobs_created_total"])
    assert refused >= 4 * 6, refused
    record("429 on every call for 4 s", verdict, took[0], f"{refused} calls refused")


def test_failed_and_never_finishing_jobs_end_failed_with_reasons(stack, tmp_path):
    worker(stack, {"LETZFLOW_IMAGE_DEADLINE": "5"}, name="deadline")
    stack.sim.configure(fail_rate=0.3, never_finish_rate=0.3)
    before = stack.sim.counters()
    with stopwatch() as took:
        batch_id = run_batch(stack, write_spec(tmp_path, "doomed", GENERATE, _items("doom", 12)))
        wait_batch(stack, batch_id, timeout=90)
    after = stack.sim.counters()
    verdict = verify(stack, batch_id, before["jobs_created_total"], allow_failed=True)
    reasons = list(verdict.reasons.values())
    deadline = [r for r in reasons if "deadline passed" in r and "interrupted" in r]
    failed = [r for r in reasons if "LetzAI job failed" in r]
    assert deadline and failed and len(deadline) + len(failed) == len(reasons), reasons
    assert after["interrupts"] - before["interrupts"] >= len(deadline)
    record(
        "jobs failed / never finishing (deadline 5 s)",
        verdict,
        took[0],
        f"{len(failed)} failed by the API, {len(deadline)} interrupted",
    )


def test_out_of_credits_pauses_then_resume_finishes_without_duplicates(stack, tmp_path):
    worker(stack, name="credits")
    stack.sim.configure(credits=5)
    before = jobs_created(stack)
    batch_id = run_batch(stack, write_spec(tmp_path, "credits", GENERATE, _items("credit", 10)))
    batch = wait_batch(stack, batch_id, ("paused",), timeout=60)
    assert (
        "402" in batch.message
        and "credits" in batch.message
        and f"letzflow resume {batch_id}" in batch.message
    )
    status = cli(stack, "status", batch_id)
    assert "paused" in status.stdout and "402" in status.stdout
    stack.sim.configure(credits=None)
    with stopwatch() as took:
        result = cli(stack, "resume", batch_id)
        assert result.returncode == 0, result.stderr
        wait_batch(stack, batch_id, timeout=60)
    verdict = verify(stack, batch_id, before)
    assert verdict.jobs_created == 10
    record("402 halfway, then letzflow resume", verdict, took[0])


def test_s3_endpoint_hanging_during_copies_then_back(stack, tmp_path):
    worker(stack, name="s3")
    before = jobs_created(stack)
    batch_id = run_batch(stack, write_spec(tmp_path, "s3down", GENERATE, _items("s3", 10)))
    # hang the endpoint once the first job is submitted, before its copy: on a loaded machine, waiting for
    # the first copy could let most of the batch through first
    wait_steps(stack, batch_id, ("submitted", "running", "ready", "copying", "done"), 1)
    stack.s3.pause()
    paused_at = time.monotonic()
    try:
        wait_steps(stack, batch_id, ("ready", "copying"), 3, timeout=30)
        time.sleep(4)
    finally:
        stack.s3.resume()
    wait_batch(stack, batch_id, timeout=150)
    recovered = time.monotonic() - paused_at
    verdict = verify(stack, batch_id, before)  # includes: no stray or partial objects in the bucket
    record("S3 endpoint hung during copies", verdict, recovered)
