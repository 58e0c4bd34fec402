"""Bad input: every case is refused before anything is submitted (exit 2, the problem named), or, where
only the API can judge it, the step ends failed with a clear reason and nothing hangs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.engine import REPO, cli, ledger, manifest, run_batch, wait_batch, write_spec
from tests.reliability.harness import SIM, jobs_created, record, start_beat, verify, worker
from workers.stack import EmbeddedStack

pytestmark = pytest.mark.integration

GENERATE = [{"generate": {"width": 512, "height": 512}}]


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs=SIM) as s:
        start_beat(s)
        worker(s, name="input")
        yield s


def refused(stack: EmbeddedStack, spec: Path, *words: str, env: dict[str, str] | None = None) -> str:
    """Run the spec; assert exit 2, the message names every word, and the simulator saw no job."""
    before = jobs_created(stack)
    result = cli(stack, "run", str(spec), env=env)
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in: {text}"
    assert jobs_created(stack) == before
    return text


def test_malformed_yaml_names_the_line(stack, tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text("name: broken\nsteps:\n  - generate: {width: 512\nitems: []\n")
    refused(stack, spec, "line")


def test_malformed_csv_names_the_problem(stack, tmp_path):
    (tmp_path / "items.csv").write_text('id,prompt\nok-1,"fine"\nbad-2,red, blue chair\n')
    spec = tmp_path / "badcsv.yaml"
    spec.write_text("name: badcsv\nsteps:\n  - generate: {width: 512, height: 512}\nitems_csv: items.csv\n")
    refused(stack, spec, "items.csv row 3", "columns")


def test_csv_without_an_id_column(stack, tmp_path):
    (tmp_path / "noid.csv").write_text("sku,prompt\na,b\n")
    spec = tmp_path / "noid.yaml"
    spec.write_text("name: noid\nsteps:\n  - generate: {width: 512, height: 512}\nitems_csv: noid.csv\n")
    refused(stack, spec, "id")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"width": "big", "height": 512}, ("width",)),
        ({"width": 3000, "height": 512}, ("width", "3000")),
        ({"width": 512, "height": 512, "quality": 99}, ("quality",)),
    ],
)
def test_wrong_types_and_out_of_range_parameters(stack, tmp_path, params, words):
    refused(
        stack, write_spec(tmp_path, "params", [{"generate": params}], [{"id": "a", "prompt": "x"}]), *words
    )


def test_unknown_step_kind(stack, tmp_path):
    refused(
        stack,
        write_spec(tmp_path, "kind", [{"paint": {"width": 512}}], [{"id": "a", "prompt": "x"}]),
        "paint",
    )


def test_duplicate_item_ids(stack, tmp_path):
    items = [{"id": "same", "prompt": "one"}, {"id": "same", "prompt": "two"}]
    refused(stack, write_spec(tmp_path, "dupids", GENERATE, items), "same", "duplicate")


def _peak_rss_mb(stack: EmbeddedStack, *args: str) -> tuple[int, str, float]:
    code = (
        "import resource, sys; from workers.cli import main; rc = main(sys.argv[1:]); "
        "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); "
        "sys.exit(rc)"
    )
    import os

    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **stack.env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    peak = next(
        float(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("PEAK_RSS_KB")
    )
    return result.returncode, result.stdout + result.stderr, peak / 1024


def test_100k_row_csv_streams_with_bounded_memory_and_a_late_error_is_found(stack, tmp_path):
    rows = 100_000
    with (tmp_path / "big.csv").open("w") as f:
        f.write("id,prompt\n")
        for n in range(rows):
            f.write(f"sku-{n:06d},studio photo of product number {n} on a white background\n")
    (tmp_path / "small.csv").write_text("id,prompt\nsku-1,one\n")
    for name in ("big", "small"):
        (tmp_path / f"{name}.yaml").write_text(
            f"name: {name}\nsteps:\n  - generate: {{width: 512, height: 512}}\nitems_csv: {name}.csv\n"
        )
    code, text, small_mb = _peak_rss_mb(stack, "run", "--dry-run", str(tmp_path / "small.yaml"))
    assert code == 0, text
    code, text, big_mb = _peak_rss_mb(stack, "run", "--dry-run", str(tmp_path / "big.yaml"))
    assert code == 0 and "100000" in text.replace(",", ""), text
    assert big_mb - small_mb < 80, f"100k rows took {big_mb - small_mb:.0f} MB more than 1 row"
    with (tmp_path / "big.csv").open("a") as f:  # a duplicate id on the very last line
        f.write("sku-000007,the same id again\n")
    before = jobs_created(stack)
    code, text, _ = _peak_rss_mb(stack, "run", str(tmp_path / "big.yaml"))
    assert code == 2 and "sku-000007" in text, text
    assert jobs_created(stack) == before
    print(
        json.dumps(
            {"csv_rows": rows, "peak_rss_mb_1_row": round(small_mb), "peak_rss_mb_100k": round(big_mb)}
        )
    )


def test_unicode_and_very_long_prompts_work_end_to_end(stack, tmp_path):
    prompts = {
        "uni": "Ein Café in Zürich 🌿 — 東京の夜景, «ñandú» \u200b",
        "long": ("a very detailed product photo of a handbag, " * 90).strip(),
    }
    before = jobs_created(stack)
    batch_id = run_batch(
        stack, write_spec(tmp_path, "prompts", GENERATE, [{"id": k, "prompt": v} for k, v in prompts.items()])
    )
    wait_batch(stack, batch_id, timeout=60)
    verdict = verify(stack, batch_id, before)
    doc = manifest(stack, batch_id)
    assert {i["id"]: i["prompt"] for i in doc["items"]} == prompts
    record("unicode + 4000-char prompts", verdict)


def test_unreachable_or_non_image_inputs_fail_clearly_without_hanging(stack, tmp_path):
    (tmp_path / "notes.txt").write_text("this is not an image")
    items = [
        {"id": "missing", "prompt": "x", "image_url": str(tmp_path / "nope.png")},
        {"id": "text", "prompt": "x", "image_url": str(tmp_path / "notes.txt")},
    ]
    spec = write_spec(tmp_path, "inputs", [{"edit": {"mode": "context"}}], items)
    before = jobs_created(stack)
    result = cli(stack, "run", str(spec))
    text = result.stdout + result.stderr
    if result.returncode == 2:  # refused up front: both problems named
        assert "nope.png" in text and "notes.txt" in text, text
    else:
        batch_id = run_batch(stack, spec)
        wait_batch(stack, batch_id, timeout=60)
        items_by_key = {i.key: i for i in ledger(stack).items(batch_id)}
        assert items_by_key["missing"].state == "failed" and "nope.png" in (
            items_by_key["missing"].error or ""
        )
        assert items_by_key["text"].state == "failed"
    assert jobs_created(stack) == before


def test_wrong_api_key_stops_the_batch_at_the_first_calls(stack, tmp_path):
    before = stack.sim.counters()
    stack.sim.configure(valid_keys=["sk-the-only-good-key"])
    try:
        batch_id = run_batch(
            stack,
            write_spec(
                tmp_path, "badkey", GENERATE, [{"id": f"k{n}", "prompt": f"key {n}"} for n in range(30)]
            ),
        )
        batch = wait_batch(stack, batch_id, ("stopped",), timeout=60)
    finally:
        stack.sim.configure(valid_keys=None)
    after = stack.sim.counters()
    refused_calls = after["responses"].get("401", 0) - before["responses"].get("401", 0)
    assert "401" in batch.message and "LETZAI_API_KEY" in batch.message
    assert 1 <= refused_calls <= 8, refused_calls
    assert after["jobs_created_total"] == before["jobs_created_total"]
    cli(stack, "cancel", batch_id)


def test_unknown_batch_id(stack):
    result = cli(stack, "status", "nope")
    assert result.returncode == 2 and "no batch 'nope'" in result.stdout + result.stderr


def test_missing_bucket_is_a_clear_error_before_any_job(stack, tmp_path):
    spec = write_spec(tmp_path, "nobucket", GENERATE, [{"id": "a", "prompt": "x"}])
    refused(stack, spec, "no-such-bucket", env={"S3_BUCKET": "no-such-bucket"})


def test_unwritable_ledger_path_is_a_clear_error(stack, tmp_path):
    spec = write_spec(tmp_path, "noledger", GENERATE, [{"id": "a", "prompt": "x"}])
    refused(
        stack,
        spec,
        "/dev/null/letzflow.db",
        "ledger",
        env={"DATABASE_URL": "sqlite:////dev/null/letzflow.db"},
    )
