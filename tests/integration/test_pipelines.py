"""Pipelines as a user drives them: failures and retry, cancel, --wait exit codes, reports, schedules."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from tests.engine import assert_lineage, cli, ledger, run_batch, wait_batch, write_spec
from tests.fixtures_stack import FAST_SIM
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

ENV = {"LETZFLOW_RECONCILE_EVERY": "2", "LETZAI_MAX_RPS": "500", "LETZAI_MAX_INFLIGHT": "50"}
STEPS = [
    {"generate": {"width": 512, "height": 512}},
    {"skin_fix": {"intensity": 2}},
    {"upscale": {"strength": 1, "size": 2}},
]


@pytest.fixture(scope="module")
def stack():
    with EmbeddedStack(sim_knobs=FAST_SIM) as s:
        s.start_worker(concurrency=8, pool="threads", env=ENV)
        yield s


@pytest.fixture(autouse=True)
def calm_sim(stack):
    stack.sim.configure(
        fail_rate=0.0, latency_image=0.2, latency_image_edit=0.2, latency_upscale=0.2, never_finish_rate=0.0
    )


def _created(stack) -> dict[str, int]:
    return {k: v["created"] for k, v in stack.sim.counters()["posts"].items()}


def test_failed_items_are_reported_and_retry_reruns_only_failed_steps(stack, tmp_path):
    stack.sim.configure(fail_rate=0.35, seed=11)
    items = [{"id": f"f{n:02d}", "prompt": f"retry me {n}"} for n in range(12)]
    spec = write_spec(tmp_path, "flaky", STEPS, items)
    waited = cli(stack, "run", str(spec), "--wait")
    assert waited.returncode == 1, waited.stdout + waited.stderr  # some items failed
    led = ledger(stack)
    batch = next(b for b in led.batches_in(("done",)) if b.name == "flaky")
    batch_id = batch.id
    failed = led.items(batch_id, ("failed",))
    assert failed, "the simulator's failure rate should have failed some items"
    assert "LetzAI job failed" in (failed[0].error or "")
    assert failed[0].key in waited.stderr
    done_before = {s.id: s.remote_id for s in led.steps_in(batch_id, ("done",))}

    stack.sim.configure(fail_rate=0.0)
    before = stack.sim.counters()["jobs_created_total"]
    retried = cli(stack, "retry", batch_id, "--wait")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert led.item_counts(batch_id) == {"done": 12}
    after_steps = {s.id: s.remote_id for s in led.steps_in(batch_id, ("done",))}
    for step_id, remote in done_before.items():
        assert after_steps[step_id] == remote  # finished steps were reused, not re-run
    new_jobs = stack.sim.counters()["jobs_created_total"] - before
    assert new_jobs == 12 * 3 - len(done_before)
    assert assert_lineage(stack, batch_id) >= 1


def test_cancel_stops_new_posts_and_interrupts_images_in_flight(stack, tmp_path):
    stack.sim.configure(latency_image=30.0)
    items = [{"id": f"c{n:02d}", "prompt": f"cancel me {n}"} for n in range(15)]
    batch_id = run_batch(stack, write_spec(tmp_path, "cancelme", STEPS, items))
    led = ledger(stack)
    deadline = time.monotonic() + 20
    while not led.steps_in(batch_id, ("submitted", "running")) and time.monotonic() < deadline:
        time.sleep(0.2)
    interrupts_before = stack.sim.counters()["interrupts"]
    result = cli(stack, "cancel", batch_id)
    assert result.returncode == 0 and "cancelled" in result.stdout
    posts_after_cancel = stack.sim.counters()["jobs_created_total"]
    time.sleep(3)
    assert stack.sim.counters()["jobs_created_total"] == posts_after_cancel
    assert stack.sim.counters()["interrupts"] > interrupts_before
    assert set(led.item_counts(batch_id)) == {"cancelled"}
    assert ledger(stack).batch(batch_id).state == "cancelled"


def test_run_wait_exits_zero_and_status_and_report_work(stack, tmp_path):
    items = [{"id": f"ok{n}", "prompt": f"all good {n}"} for n in range(4)]
    spec = write_spec(tmp_path, "allgood", STEPS, items)
    result = cli(stack, "run", str(spec), "--wait")
    assert result.returncode == 0, result.stdout + result.stderr
    batch_id = next(ln for ln in result.stdout.splitlines() if len(ln.strip()) == 12).strip()
    status = cli(stack, "status", batch_id)
    assert status.returncode == 0 and "done" in status.stdout
    out = tmp_path / "report"
    report = cli(stack, "report", batch_id, "--format", "json,csv,html", "--out", str(out))
    assert report.returncode == 0, report.stderr
    doc = json.loads((out / "manifest.json").read_text())
    assert [i["status"] for i in doc["items"]] == ["done"] * 4
    assert (out / "gallery.html").read_text().count("ok3") >= 1
    # the same spec again: nothing new is paid for
    before = stack.sim.counters()["jobs_created_total"]
    again = cli(stack, "run", str(spec), "--wait")
    assert again.returncode == 0 and "already exists" in again.stdout
    assert stack.sim.counters()["jobs_created_total"] == before
    assert assert_lineage(stack, batch_id) >= 1


def test_invalid_spec_exits_2_and_submits_nothing(stack, tmp_path):
    before = stack.sim.counters()["jobs_created_total"]
    spec = write_spec(tmp_path, "bad", [{"generate": {"width": 99999}}], [{"id": "x", "prompt": "p"}])
    result = cli(stack, "run", str(spec))
    assert result.returncode == 2 and "width" in result.stderr
    assert stack.sim.counters()["jobs_created_total"] == before


def test_unknown_batch_id_is_a_clear_error(stack):
    result = cli(stack, "status", "nosuchbatch")
    assert result.returncode == 2 and "no batch 'nosuchbatch'" in result.stderr


def test_a_schedule_firing_starts_one_batch_and_refuses_overlap(stack, tmp_path):
    from workers.schedules import beat_entries, load_schedules

    spec = write_spec(
        tmp_path,
        "sched",
        [{"generate": {"width": 512, "height": 512}}],
        [{"id": "s1", "prompt": "scheduled"}],
    )
    (tmp_path / "schedules.yaml").write_text(
        f"schedules:\n  - {{name: nightly, cron: '0 2 * * *', spec: {spec.name}}}\n"
    )
    schedules = load_schedules(tmp_path / "schedules.yaml")
    assert list(beat_entries(schedules)) == ["schedule:nightly"]
    stack.sim.configure(latency_image=3.0)
    from celery import Celery

    app = Celery(broker=stack.env["REDIS_URL"], backend=stack.env["REDIS_URL"])
    first = app.send_task("letzflow.run_schedule", args=["nightly", str(spec)], queue="batch")
    batch_id = first.get(timeout=30)
    second = app.send_task("letzflow.run_schedule", args=["nightly", str(spec)], queue="batch")
    assert second.get(timeout=30) is None  # the previous run is still open: refused, not doubled
    batch = wait_batch(stack, batch_id)
    assert batch.name.startswith(f"nightly-{datetime.now(UTC):%Y%m%d}")
    assert batch.schedule == "nightly"
    assert assert_lineage(stack, batch_id) >= 1
