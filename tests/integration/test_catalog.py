"""Incremental catalogs on real parts: a changed catalog pays only for what changed.

The measurement of issue 14, as a test: a 100-item generate → upscale catalog, then the same catalog
again (0 jobs), then with 5 prompts changed and 5 items added (exactly 20 jobs; the 95 unchanged items carry
their earlier outputs, sha256 equal), then with the upscale size changed (only the upscales are paid).
"""

from __future__ import annotations

import threading

import pytest

from tests.engine import check_outputs_match_sources, cli, ledger, manifest, run_batch, wait_batch, write_spec
from tests.fixtures_stack import FAST_SIM
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

ENV = {"LETZFLOW_RECONCILE_EVERY": "2", "LETZAI_MAX_RPS": "500", "LETZAI_MAX_INFLIGHT": "50"}
STEPS = [{"generate": {"width": 512, "height": 512}}, {"upscale": {"strength": 1, "size": 2}}]


@pytest.fixture(scope="module")
def stack():
    with EmbeddedStack(sim_knobs=FAST_SIM, worker_options={"env": ENV}) as s:
        s.start_worker(concurrency=8, pool="threads", env=ENV)
        yield s


def jobs(stack: EmbeddedStack) -> int:
    return int(stack.sim.counters()["jobs_created_total"])  # type: ignore[union-attr]


def catalog(n: int, changed: set[int] = frozenset(), start: int = 0) -> list[dict[str, str]]:  # type: ignore[assignment]
    return [
        {"id": f"sku-{k:03d}", "prompt": f"studio photo of product {k}" + (" in red" if k in changed else "")}
        for k in range(start, n)
    ]


def outputs_by_item(stack: EmbeddedStack, batch_id: str) -> dict[str, list[dict]]:
    return {item["id"]: item["outputs"] for item in manifest(stack, batch_id)["items"]}


def test_a_changed_catalog_pays_only_for_what_changed(stack, tmp_path):
    start = jobs(stack)
    first = run_batch(stack, write_spec(tmp_path, "shop", STEPS, catalog(100)))
    wait_batch(stack, first, timeout=180)
    assert jobs(stack) - start == 200

    again = cli(stack, "run", str(tmp_path / "shop.yaml"))
    assert again.returncode == 0 and "already exists" in again.stdout, again.stdout
    assert jobs(stack) - start == 200  # the identical re-run pays nothing

    changed = {3, 17, 42, 64, 99}
    v2 = write_spec(tmp_path, "shop", STEPS, catalog(100, changed) + catalog(105, start=100))
    dry = cli(stack, "run", "--dry-run", str(v2))
    assert "LetzAI jobs to pay: 20" in dry.stdout, dry.stdout
    assert "step 1 generate: 95 reused, 5 changed, 5 new" in dry.stdout, dry.stdout
    before = jobs(stack)
    second = run_batch(stack, v2)
    wait_batch(stack, second, timeout=180)
    assert jobs(stack) - before == 20

    old, new = outputs_by_item(stack, first), outputs_by_item(stack, second)
    for k in range(100):
        sku = f"sku-{k:03d}"
        if k in changed:
            assert all("reused_from" not in o for o in new[sku])
            continue
        assert [o["sha256"] for o in new[sku]] == [o["sha256"] for o in old[sku]]
        assert all(o["reused_from"]["batch"] == first for o in new[sku]), new[sku]
        assert all(o["key"].split("/")[-3] == second for o in new[sku])  # copied into the new layout
    assert check_outputs_match_sources(stack, second) == 105 * 2


def test_a_changed_upscale_size_pays_only_for_the_upscales(stack, tmp_path):
    first = run_batch(stack, write_spec(tmp_path, "sizes", STEPS, catalog(510, start=500)))
    wait_batch(stack, first, timeout=120)
    before = jobs(stack)
    bigger = [STEPS[0], {"upscale": {"strength": 1, "size": 4}}]
    second = run_batch(stack, write_spec(tmp_path, "sizes", bigger, catalog(510, start=500)))
    wait_batch(stack, second, timeout=120)
    assert jobs(stack) - before == 10
    led = ledger(stack)
    generate = [s for s in led.steps_in(second, ("done",)) if s.index == 0]
    upscale = [s for s in led.steps_in(second, ("done",)) if s.index == 1]
    assert len(generate) == 10 and all(s.reused_from for s in generate)
    assert (
        len(upscale) == 10 and not any(s.reused_from for s in upscale) and all(s.remote_id for s in upscale)
    )


def test_fresh_renders_anew_even_an_identical_catalog(stack, tmp_path):
    spec = write_spec(tmp_path, "fresh", STEPS[:1], catalog(704, start=700))
    wait_batch(stack, run_batch(stack, spec), timeout=120)
    before = jobs(stack)
    result = cli(stack, "run", "--fresh", str(spec))
    assert result.returncode == 0, result.stderr
    batch_id = result.stdout.strip().splitlines()[-1]
    wait_batch(stack, batch_id, timeout=120)
    assert jobs(stack) - before == 4


def test_two_batches_planning_the_same_new_content_at_once_pay_once(stack, tmp_path):
    a = write_spec(tmp_path, "twin-a", STEPS[:1], catalog(806, start=800))
    b = write_spec(tmp_path, "twin-b", STEPS[:1], catalog(806, start=800))
    before = jobs(stack)
    ids: list[str] = []
    threads = [threading.Thread(target=lambda p=p: ids.append(run_batch(stack, p))) for p in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for batch_id in ids:
        wait_batch(stack, batch_id, timeout=120)
    assert jobs(stack) - before == 6
    shas = [sorted(o["sha256"] for i in manifest(stack, b)["items"] for o in i["outputs"]) for b in ids]
    assert shas[0] == shas[1] and len(shas[0]) == 6


def test_a_reused_copy_redone_after_a_crash_gives_the_same_object(stack, tmp_path):
    spec = write_spec(tmp_path, "crashcopy", STEPS[:1], catalog(903, start=900))
    first = run_batch(stack, spec)
    wait_batch(stack, first, timeout=120)
    second = run_batch(
        stack, write_spec(tmp_path, "crashcopy", STEPS[:1], catalog(903, start=900), max_jobs=99)
    )
    wait_batch(stack, second, timeout=120)
    led = ledger(stack)
    step = led.steps_in(second, ("done",))[0]
    recorded = list(step.outputs)
    # the S3 copy happened, the ledger write after it was lost: the step is found ready again
    led.transition(step.id, ("done",), "ready", outputs=[])
    from letzflow.engine.copy import copy
    from storage.media import S3MediaStore
    from tests.engine_fakes import Fakes

    store = S3MediaStore(stack.s3.client(), stack.bucket, stack.prefix)  # type: ignore[union-attr]
    copy(Fakes(led, store=store).deps(), step.id)  # a reused output: the ledger and the store only
    again = led.step(step.id)
    assert again.state == "done" and again.outputs == recorded
