"""Webhooks as LetzAI may deliver them: lost, duplicated, either body shape, sent to a wrong token, or
forged by strangers; and webhook tokens as the exact identity of a lost answer's job.

A stack with the receiver (``letzflow webhooks``) and ``LETZFLOW_WEBHOOK_URL`` set; the simulator calls
each job's ``webhookUrl`` when it ends. What must hold besides ``harness.verify`` (every output its own
item's, jobs created = steps holding a job, nothing stuck): a webhook only ever wakes the step whose
token it carries; a forged one changes nothing at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from letzai.webhook_tokens import new_token, token_hash
from tests.engine import ledger, run_batch, wait_batch, write_spec
from tests.reliability.harness import CLEAN_SIM, PIPELINE, SIM, THIN, jobs_created, record, verify, worker
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

WEBHOOKS_OFF = {
    "webhook_lost_rate": 0.0,
    "webhook_duplicate_rate": 0.0,
    "webhook_wrong_token_rate": 0.0,
    "webhook_delay": 0.0,
}


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs={**SIM, "slow_seconds": 2.0}, webhooks=True) as s:
        yield s


@pytest.fixture(autouse=True)
def _clean(stack):
    yield
    stack.sim.configure(
        **CLEAN_SIM,
        **WEBHOOKS_OFF,
        thin_list_fields=[],
        thin_get_fields=[],
        latency_image=SIM["latency_image"],
    )
    for w in stack.workers:
        if w.process is not None and w.process.alive:
            w.stop()


def _items(prefix: str, n: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}-{k:02d}", "prompt": f"{prefix} studio photo of product {k}"} for k in range(n)]


def _settled(stack: EmbeddedStack, batch_id: str, timeout: float = 120) -> None:
    """Wait (bounded) until the batch is done with no step ``unconfirmed``: a webhook that comes after its
    step's list looks ran out reopens the step, and the batch finishes again. Returns at the deadline
    either way; the caller's assertions say what is left."""
    led = ledger(stack)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = led.batch(batch_id)
        if batch is not None and batch.state == "done" and not led.steps_in(batch_id, ("unconfirmed",)):
            return
        time.sleep(0.5)


def _polls(stack: EmbeddedStack) -> int:
    return int(stack.sim.counters()["polls"]["total"])


def test_lost_duplicated_and_misdirected_webhooks_lose_nothing_and_pay_nothing_twice(stack, tmp_path):
    stack.sim.configure(
        webhook_lost_rate=0.3, webhook_duplicate_rate=0.1, webhook_wrong_token_rate=0.05, webhook_body="mixed"
    )
    w = worker(stack, name="hooks-faulty")
    before, polls_before, seen_before = jobs_created(stack), _polls(stack), stack.webhooks.health()
    t0 = time.monotonic()
    batch_id = run_batch(stack, write_spec(tmp_path, "hookfaults", PIPELINE, _items("hf", 20)))
    wait_batch(stack, batch_id, timeout=300)
    took = time.monotonic() - t0
    verdict = verify(stack, batch_id, before)
    w.stop()
    counts, seen = stack.sim.counters(), stack.webhooks.health()
    assert verdict.done == 20 and verdict.duplicate_posts == 0 and verdict.lineage_checked == 80
    assert counts["webhooks_lost"] >= 10 and counts["webhooks_duplicated"] >= 2, counts
    assert counts["webhooks_wrong_token"] >= 1, counts
    # a misdirected call woke nothing; a duplicate found nothing left to wake or was answered as a hint
    assert seen.get("unknown", 0) - seen_before.get("unknown", 0) >= counts["webhooks_wrong_token"]
    assert seen.get("accepted", 0) > seen_before.get("accepted", 0)
    polls = (_polls(stack) - polls_before) / verdict.jobs_created
    assert polls < 2.0, f"{polls:.2f} GETs per job"  # the lost ones are seen by one fallback look
    record(
        "webhooks: 30% lost, 10% duplicated, 5% wrong token, both shapes",
        verdict,
        took,
        f"lost={counts['webhooks_lost']} dup={counts['webhooks_duplicated']} "
        f"wrong={counts['webhooks_wrong_token']} GETs/job={polls:.2f}",
    )


def test_lost_answers_are_identified_by_their_webhook_token_even_where_nothing_else_tells(stack, tmp_path):
    # Without webhooks, these faults leave steps of every kind unconfirmed (test_thin_answers.py): nothing
    # in the thin objects tells two requests apart. Image, edit and video objects echo webhookUrl, and its
    # token does. Upscale objects echo none (as documented: id, status, progress, imageVersions); a lost
    # upscale answer is proven by the webhook call to its POST's own token, whose body names the job.
    stack.sim.configure(
        lost_answer_rate=0.2, lost_answer_mode="mixed", thin_list_fields=THIN, thin_get_fields=THIN
    )
    w = worker(stack, env={"LETZAI_TIMEOUT": "1", "LETZFLOW_LIST_ATTEMPTS": "3"}, name="hooks-lost")
    before, lost_before = jobs_created(stack), stack.sim.counters()["injected"]["lost"]
    t0 = time.monotonic()
    batch_id = run_batch(stack, write_spec(tmp_path, "hooklost", PIPELINE, _items("hl", 20)))
    wait_batch(stack, batch_id, timeout=300)
    _settled(stack, batch_id)  # a webhook slower than the step's list looks reopens it when it comes
    took = time.monotonic() - t0
    lost = stack.sim.counters()["injected"]["lost"] - lost_before
    verdict = verify(
        stack, batch_id, before, allow_failed=True, finalized=ledger(stack).batch(batch_id).finalize_runs
    )
    w.stop()
    steps = ledger(stack).steps_in(batch_id, ("done", "unconfirmed"))
    adopted = [s for s in steps if s.adopted]
    unconfirmed = [s for s in steps if s.state == "unconfirmed"]
    assert lost >= 5, "the fault was not injected"
    assert verdict.duplicate_posts == 0
    assert not unconfirmed, [(s.kind, s.error_message) for s in unconfirmed]
    assert len(adopted) == lost, (len(adopted), lost)
    kinds = {k: sum(s.kind == k for s in adopted) for k in ("generate", "skin_fix", "upscale", "animate")}
    record(
        "webhooks on: lost answers 20%, thin lists and GETs",
        verdict,
        took,
        f"lost={lost} adopted by token={len(adopted)} {kinds} unconfirmed={len(unconfirmed)}",
    )


def test_a_webhook_that_comes_after_its_step_went_unconfirmed_still_names_its_job(stack, tmp_path):
    # Upscale objects echo no webhookUrl: with thin lists, only the webhook to a lost answer's token tells
    # which job it created. Here every webhook comes 25 s after its job's end, long after two list looks
    # have ended the step unconfirmed and the batch has finished; the late call reopens the step, its
    # recovery adopts the named job (once a GET shows it), and the item is done, nothing re-sent.
    stack.sim.configure(
        lost_answer_rate=0.3,
        lost_answer_mode="mixed",
        thin_list_fields=THIN,
        thin_get_fields=THIN,
        webhook_delay=25.0,
    )
    w = worker(stack, env={"LETZAI_TIMEOUT": "1", "LETZFLOW_LIST_ATTEMPTS": "2"}, name="hooks-late")
    before, lost_before = jobs_created(stack), stack.sim.counters()["injected"]["lost"]
    t0 = time.monotonic()
    steps = [PIPELINE[0], PIPELINE[2]]
    batch_id = run_batch(stack, write_spec(tmp_path, "hooklate", steps, _items("hz", 20)))
    wait_batch(stack, batch_id, timeout=120)
    led = ledger(stack)
    first_end = led.steps_in(batch_id, ("unconfirmed",))
    _settled(stack, batch_id)
    took = time.monotonic() - t0
    lost = stack.sim.counters()["injected"]["lost"] - lost_before
    batch = led.batch(batch_id)
    verdict = verify(stack, batch_id, before, finalized=batch.finalize_runs)
    w.stop()
    adopted = [s for s in led.steps_in(batch_id, ("done",)) if s.adopted]
    assert first_end, "no step went unconfirmed before its webhook: the late path was not exercised"
    assert batch.finalize_runs >= 2  # it had ended with the unconfirmed steps, then ran again
    assert verdict.done == 20 and verdict.unconfirmed == 0 and verdict.duplicate_posts == 0
    assert len(adopted) == lost, (len(adopted), lost)
    record(
        "webhooks 25 s late: lost answers 30%, thin lists and GETs",
        verdict,
        took,
        f"lost={lost} unconfirmed at first end={len(first_end)} adopted={len(adopted)} "
        f"finalized={batch.finalize_runs}",
    )


def _ledger_files(stack: EmbeddedStack) -> dict[str, tuple[float, int]]:
    base = Path(str(stack.database_path))
    files = [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-journal")]
    return {f.name: (f.stat().st_mtime, f.stat().st_size) for f in files if f.exists()}


def _pushes(stack: EmbeddedStack) -> int:
    stats = stack.redis.client().info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("lpush", "rpush", "zadd"))


def test_forged_webhooks_wake_nothing_write_nothing_and_the_real_one_still_wakes_its_step(stack, tmp_path):
    # LetzAI's own call is lost: the test sends the real one. A 3 s job: its look is parked meanwhile.
    stack.sim.configure(webhook_lost_rate=1.0, latency_image=3.0)
    w = worker(stack, name="hooks-forged", env={"LETZFLOW_RECONCILE_EVERY": "3600"})
    batch_id = run_batch(stack, write_spec(tmp_path, "hookforged", PIPELINE[:1], _items("hx", 1)))
    led = ledger(stack)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not led.steps_in(batch_id, ("submitted", "running")):
        time.sleep(0.1)
    time.sleep(1.5)  # the first look (at once when warm, after 1 s when cold) has parked
    w.stop()  # nothing else may push a message or write the ledger while strangers knock
    step = led.steps_in(batch_id, ("submitted", "running"))[0]
    job = next(
        j for j in requests.get(f"{stack.sim.url}/_sim/jobs", timeout=10).json() if j["id"] == step.remote_id
    )
    real_url = job["request"]["webhookUrl"]
    base = real_url.rsplit("/", 1)[0]

    files, pushes, seen = _ledger_files(stack), _pushes(stack), stack.webhooks.health()
    codes: list[int] = []

    def knock(n: int) -> None:
        with requests.Session() as session:
            for _ in range(n):
                codes.append(
                    session.post(f"{base}/{new_token()}", json={"id": step.remote_id}, timeout=10).status_code
                )

    threads = [threading.Thread(target=knock, args=(250,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(404) == 1000, {c: codes.count(c) for c in set(codes)}
    assert _pushes(stack) == pushes, "a forged webhook enqueued something"
    assert _ledger_files(stack) == files, "a forged webhook wrote the ledger"
    assert stack.webhooks.health()["unknown"] - seen.get("unknown", 0) == 1000

    assert requests.post(real_url, json={"event": "image.ready", "data": job}, timeout=10).status_code == 202
    assert _pushes(stack) > pushes  # the parked look was published
    assert requests.post(real_url, json=job, timeout=10).status_code == 202  # a duplicate: a hint only
    w2 = worker(stack, name="hooks-forged-2")
    wait_batch(stack, batch_id, timeout=120)
    w2.stop()
    assert led.batch(batch_id).state == "done"
    gone = requests.post(real_url, json=job, timeout=10)
    assert gone.status_code == 404 and gone.content == b""  # the token expired with its step
    token = real_url.rsplit("/", 1)[1]
    stored = b"".join(p.read_bytes() for p in Path(str(stack.database_path)).parent.glob("letzflow.db*"))
    assert token.encode() not in stored and token_hash(token).encode() in stored  # only its hash is kept
    assert token not in stack.webhooks.process.log_text() and token not in w2.process.log_text()
