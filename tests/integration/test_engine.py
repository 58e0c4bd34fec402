"""The engine end to end on real parts: redis-server, Celery worker processes, the simulator, moto's S3."""

from __future__ import annotations

import json
import time

import pytest
import requests
from celery import Celery

from tests.engine import (
    assert_lineage,
    check_outputs_match_sources,
    cli,
    ledger,
    manifest,
    run_batch,
    task_runs,
    wait_batch,
    write_spec,
)
from tests.fixtures_stack import FAST_SIM
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

ENGINE_ENV = {"LETZFLOW_RECONCILE_EVERY": "2", "LETZAI_MAX_RPS": "500", "LETZAI_MAX_INFLIGHT": "50"}


@pytest.fixture(scope="module")
def stack():
    with EmbeddedStack(sim_knobs=FAST_SIM, worker_options={"env": ENGINE_ENV}) as s:
        s.start_worker(concurrency=8, pool="threads", env=ENGINE_ENV)
        yield s


@pytest.fixture(autouse=True)
def fresh_sim(stack):
    stack.sim.configure(
        fail_rate=0.0,
        lost_answer_rate=0.0,
        rate_limit_rate=0.0,
        error_5xx_rate=0.0,
        credits=None,
        never_finish_rate=0.0,
        reset_rate=0.0,
        slow_rate=0.0,
    )
    yield


def _jobs(stack) -> int:
    return stack.sim.counters()["jobs_created_total"]


def test_single_image_end_to_end_submitted_once_and_stored_verbatim(stack, tmp_path):
    before = _jobs(stack)
    spec = write_spec(
        tmp_path,
        "single",
        [{"generate": {"width": 512, "height": 512}}],
        [{"id": "one", "prompt": "a red chair"}],
    )
    batch_id = run_batch(stack, spec)
    wait_batch(stack, batch_id)
    assert _jobs(stack) - before == 1
    assert check_outputs_match_sources(stack, batch_id) == 1
    doc = manifest(stack, batch_id)
    assert doc["items"][0]["status"] == "done"
    out = doc["items"][0]["outputs"][0]
    assert out["key"] == f"single/{batch_id}/one/01-generate.png" and out["content_type"] == "image/png"
    assert ledger(stack).batch(batch_id).finalize_runs == 1


def test_lost_post_answer_is_adopted_not_resent(stack, tmp_path):
    stack.sim.configure(lost_answer_rate=1.0)
    before = stack.sim.counters()
    spec = write_spec(
        tmp_path,
        "lost",
        [{"generate": {"width": 512, "height": 512}}],
        [{"id": f"i{n}", "prompt": f"lost answer {n}"} for n in range(3)],
    )
    batch_id = run_batch(stack, spec)
    deadline = time.monotonic() + 30
    while (
        stack.sim.counters()["injected"]["lost"] - before["injected"]["lost"] < 3
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    stack.sim.configure(lost_answer_rate=0.0)
    wait_batch(stack, batch_id)
    after = stack.sim.counters()
    assert after["jobs_created_total"] - before["jobs_created_total"] == 3  # one job billed per step
    assert after["list_calls_total"] > before["list_calls_total"]  # found through the list endpoint
    assert ledger(stack).item_counts(batch_id) == {"done": 3}
    assert assert_lineage(stack, batch_id) >= 1


def test_bad_request_fails_the_item_with_the_apis_message_and_the_batch_goes_on(stack, tmp_path):
    # width 3000 is outside the documented range: the spec turns that check off, so the API answers 400
    spec = write_spec(
        tmp_path,
        "badreq",
        [{"generate": {"width": 3000, "height": 512, "skip_checks": ["width"]}}],
        [{"id": "bad", "prompt": "too wide"}],
    )
    batch_id = run_batch(stack, spec)
    wait_batch(stack, batch_id)
    item = ledger(stack).items(batch_id)[0]
    assert item.state == "failed" and "width" in (item.error or "")
    step = ledger(stack).item_steps(item.id)[0]
    assert step.error_status == 400 and step.remote_id is None


def test_out_of_credits_pauses_then_resume_finishes_without_duplicates(stack, tmp_path):
    stack.sim.configure(credits=2)
    before = _jobs(stack)
    spec = write_spec(
        tmp_path,
        "credits",
        [{"generate": {"width": 512, "height": 512}}],
        [{"id": f"c{n}", "prompt": f"credit {n}"} for n in range(5)],
    )
    batch_id = run_batch(stack, spec)
    batch = wait_batch(stack, batch_id, ("paused",))
    assert "402" in batch.message and f"letzflow resume {batch_id}" in batch.message
    stack.sim.configure(credits=None)
    result = cli(stack, "resume", batch_id)
    assert result.returncode == 0, result.stderr
    wait_batch(stack, batch_id)
    assert _jobs(stack) - before == 5
    assert ledger(stack).item_counts(batch_id) == {"done": 5}
    assert assert_lineage(stack, batch_id) >= 1


def test_wrong_api_key_stops_the_batch_at_the_first_call(stack, tmp_path):
    before = stack.sim.counters()
    spec = write_spec(
        tmp_path,
        "badkey",
        [{"generate": {"width": 512, "height": 512}}],
        [{"id": f"k{n}", "prompt": f"key {n}"} for n in range(40)],
    )
    stack.sim.configure(valid_keys=["nobody"])  # the workers' key is now refused
    batch_id = run_batch(stack, spec)
    try:
        batch = wait_batch(stack, batch_id, ("stopped",))
    finally:
        stack.sim.configure(valid_keys=None)
    assert "401" in batch.message and "LETZAI_API_KEY" in batch.message
    after = stack.sim.counters()
    refused = after["responses"].get("401", 0) - before["responses"].get("401", 0)
    assert refused <= 10  # stops at the first calls, not after 40
    cli(stack, "cancel", batch_id)


def test_an_image_is_copied_by_its_look_unless_the_copy_ends_a_chord_header(stack, tmp_path):
    """A plain chain's image copy runs in the poll that saw the job done (one task execution less); where
    the copy is the last task of a chord's header chain (variants) it stays a task of its own: its return
    is what the chord's counter counts (taken off, the items would wait for the reconciler's re-kick)."""
    copies = "letzflow.copy_outputs"
    gen = {"width": 512, "height": 512}
    before, jobs_before = task_runs(stack), _jobs(stack)
    plain = run_batch(stack, write_spec(tmp_path, "plain", [{"generate": gen}], _prompted("plain", 4)))
    wait_batch(stack, plain)
    middle = task_runs(stack)
    assert middle.get(copies, 0) - before.get(copies, 0) == 0
    assert check_outputs_match_sources(stack, plain) == 4
    two = {**gen, "variants": 2}
    varied = run_batch(stack, write_spec(tmp_path, "varied", [{"generate": two}], _prompted("varied", 3)))
    wait_batch(stack, varied, timeout=60)
    after = task_runs(stack)
    assert after.get(copies, 0) - middle.get(copies, 0) == 6
    assert check_outputs_match_sources(stack, varied) == 6
    assert _jobs(stack) - jobs_before == 4 + 6
    led = ledger(stack)
    for batch_id in (plain, varied):
        assert all(i.state == "done" and i.finish_runs == 1 for i in led.items(batch_id))
        assert led.batch(batch_id).finalize_runs == 1


def _prompted(prefix: str, n: int) -> list[dict[str, str]]:
    return [{"id": f"{prefix}-{k}", "prompt": f"{prefix} product photo {k}"} for k in range(n)]


def test_duplicate_messages_change_nothing(stack, tmp_path):
    before = _jobs(stack)
    spec = write_spec(
        tmp_path,
        "dupes",
        [{"generate": {"width": 512, "height": 512}}],
        [{"id": "d1", "prompt": "duplicate delivery"}],
    )
    batch_id = run_batch(stack, spec)
    wait_batch(stack, batch_id)
    led = ledger(stack)
    step = led.steps_in(batch_id, ("done",))[0]
    app = Celery(broker=stack.env["REDIS_URL"], backend=stack.env["REDIS_URL"])
    for name, queue in (("submit_step", "submit"), ("poll_step", "poll"), ("copy_outputs", "media")):
        app.send_task(f"letzflow.{name}", args=[step.id], queue=queue)
        app.send_task(f"letzflow.{name}", args=[step.id], queue=queue)
    app.send_task("letzflow.finish_item", args=[step.item_id], queue="batch")
    app.send_task("letzflow.finalize_batch", args=[batch_id], queue="batch")
    time.sleep(3)
    assert _jobs(stack) - before == 1
    assert led.item(step.item_id).finish_runs == 1
    assert led.batch(batch_id).finalize_runs == 1
    assert led.step(step.id).outputs == step.outputs
    assert assert_lineage(stack, batch_id) >= 1


def test_four_step_pipeline_with_variants(stack, tmp_path):
    before = stack.sim.counters()
    steps = [
        {"generate": {"width": 512, "height": 512, "variants": 2}},
        {"skin_fix": {"intensity": 3}},
        {"upscale": {"strength": 1, "size": 2}},
        {"animate": {"prompt": "slow orbit", "settings": {"mode": "default", "duration": 4}}},
    ]
    items = [{"id": f"sku-{n:03d}", "prompt": f"studio photo of product {n}"} for n in range(20)]
    batch_id = run_batch(stack, write_spec(tmp_path, "pipeline", steps, items))
    wait_batch(stack, batch_id, timeout=240)
    after = stack.sim.counters()
    assert after["jobs_created_total"] - before["jobs_created_total"] == 20 * 2 * 4
    assert check_outputs_match_sources(stack, batch_id) == 20 * 2 * 4
    doc = manifest(stack, batch_id)
    assert len(doc["items"]) == 20 and all(i["status"] == "done" for i in doc["items"])
    led = ledger(stack)
    assert all(i.finish_runs == 1 for i in led.items(batch_id))
    assert led.batch(batch_id).finalize_runs == 1
    keys = {o["key"] for o in doc["items"][0]["outputs"]}
    assert f"pipeline/{batch_id}/sku-000/04-animate-2.mp4" in keys
    print(json.dumps({"polls_per_job": after["polls"]["per_job"]}))


def test_an_edit_with_three_completions_runs_the_rest_of_the_pipeline_once_per_image(stack, tmp_path):
    """Dynamic fan-out: generate (2 variants) → context edit yielding 3 images → upscale → animate."""
    before = _jobs(stack)
    steps = [
        {"generate": {"width": 512, "height": 512, "variants": 2}},
        {"edit": {"mode": "context", "prompt": "on a marble table", "imageCompletionsCount": 3}},
        {"upscale": {"strength": 1, "size": 2}},
        {"animate": {"prompt": "slow orbit", "settings": {"mode": "default", "duration": 4}}},
    ]
    items = [{"id": f"vase-{n}", "prompt": f"ceramic vase {n}"} for n in range(4)]
    spec = write_spec(tmp_path, "branches", steps, items)
    dry = cli(stack, "run", str(spec), "--dry-run")
    assert dry.returncode == 0 and "total LetzAI jobs: 64" in dry.stdout, dry.stdout  # 4 x (2 + 2 + 6 + 6)
    assert "step 2 (edit) yields 3 images per job: upscale, animate run once per image" in dry.stdout
    batch_id = run_batch(stack, spec)
    wait_batch(stack, batch_id, timeout=240)
    assert _jobs(stack) - before == 4 * (2 + 2 + 2 * 3 + 2 * 3)
    # every job's media stored: 2 generations, 2 x 3 edit images, 6 upscales and 6 videos per item
    assert check_outputs_match_sources(stack, batch_id) == 4 * (2 + 6 + 6 + 6)
    led = ledger(stack)
    assert all(i.state == "done" and i.finish_runs == 1 for i in led.items(batch_id))
    assert led.batch(batch_id).finalize_runs == 1
    for item in led.items(batch_id):
        item_steps = led.item_steps(item.id)
        for split in (s for s in item_steps if s.index == 1):
            completions = [r["image_id"] for r in split.results]
            assert len(set(completions)) == 3
            upscales = sorted(
                (s for s in item_steps if s.index == 2 and s.variant == split.variant), key=lambda s: s.branch
            )
            assert [s.branch for s in upscales] == ["0", "1", "2"]
            # each branch's upscale was sent the image of its own completion (the simulator echoes imageId)
            sent = [
                requests.get(
                    f"{stack.sim.url}/upscale/{s.remote_id}",
                    headers={"Authorization": "Bearer sim-key"},
                    timeout=10,
                ).json()["imageId"]
                for s in upscales
            ]
            assert sent == completions
            # the split's chord callback gathered its three branches exactly once
            gathers = [a for a in led.attempts(split.id) if a.task == "gather"]
            assert len(gathers) == 1 and gathers[0].outcome == "3 branches: 3 done"
    keys = {o["key"] for o in manifest(stack, batch_id)["items"][0]["outputs"]}
    assert {f"branches/{batch_id}/vase-0/02-edit-2.{k}.png" for k in (1, 2, 3)} <= keys
    assert f"branches/{batch_id}/vase-0/04-animate-2.3.mp4" in keys
    out = tmp_path / "report"
    report = cli(stack, "report", batch_id, "--format", "csv,html", "--out", str(out))
    assert report.returncode == 0, report.stderr
    gallery = (out / "gallery.html").read_text()
    assert gallery.count(">variant 2, image 3<") == 4  # one strip per item for that branch
    rows = [r for r in (out / "report.csv").read_text().splitlines()[1:] if ",4,animate,2,3," in r]
    assert len(rows) == 4


def test_an_edit_that_yields_fewer_images_than_asked_skips_only_the_missing_branch(stack, tmp_path):
    stack.sim.configure(edit_images_max=2)
    try:
        before = _jobs(stack)
        steps = [
            {"generate": {"width": 512, "height": 512}},
            {"edit": {"mode": "context", "prompt": "in a garden", "imageCompletionsCount": 3}},
            {"upscale": {"strength": 1, "size": 2}},
        ]
        spec = write_spec(tmp_path, "fewer", steps, [{"id": "pot", "prompt": "terracotta pot"}])
        batch_id = run_batch(stack, spec)
        wait_batch(stack, batch_id, timeout=120)
    finally:
        stack.sim.configure(edit_images_max=None)
    assert _jobs(stack) - before == 1 + 1 + 2  # no upscale was sent for the image that never came
    led = ledger(stack)
    (item,) = led.items(batch_id)
    upscales = {s.branch: s for s in led.item_steps(item.id) if s.index == 2}
    assert upscales["0"].state == upscales["1"].state == "done"
    assert upscales["2"].state == "skipped" and upscales["2"].remote_id is None
    assert "gave 2 image(s), this branch works on image 3" in upscales["2"].error_message
    assert item.state == "done" and "gave 2 image(s)" in item.error
    errors = manifest(stack, batch_id)["items"][0]["errors"]
    assert [(e["step"], e["branch"], e["state"]) for e in errors] == [(3, "3", "skipped")]
    assert assert_lineage(stack, batch_id) >= 1
