"""Helpers for engine tests: a stack with workers, the CLI as a user runs it, and ledger/S3 checks."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from storage.ledger import Ledger
from workers.stack import EmbeddedStack

REPO = Path(__file__).resolve().parents[1]


def write_spec(
    tmp: Path, name: str, steps: list[dict[str, Any]], items: list[dict[str, Any]], **extra: Any
) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "steps": steps, "items": items, **extra}, sort_keys=False))
    return path


def cli(
    stack: EmbeddedStack, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``letzflow ARGS`` against the stack, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**os.environ, **stack.env, **(env or {}), "COLUMNS": "200"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_batch(
    stack: EmbeddedStack, spec: Path, *, wait: bool = False, env: dict[str, str] | None = None
) -> str:
    """``letzflow run SPEC``; returns the batch id (the last line printed)."""
    result = cli(stack, "run", str(spec), *(["--wait"] if wait else []), env=env)
    lines = [line for line in result.stdout.strip().splitlines() if line.strip()]
    if not wait:
        assert result.returncode == 0, result.stdout + result.stderr
    ids = [
        line.strip()
        for line in lines
        if len(line.strip()) == 12 and all(c in "0123456789abcdef" for c in line.strip())
    ]
    assert ids, result.stdout + result.stderr
    return ids[0]


def ledger(stack: EmbeddedStack) -> Ledger:
    return Ledger(stack.env["DATABASE_URL"])


def wait_batch(
    stack: EmbeddedStack, batch_id: str, states: tuple[str, ...] = ("done",), timeout: float = 120
) -> Any:
    """Wait until the batch reaches one of ``states``; fail with the ledger's counts otherwise."""
    led = ledger(stack)
    deadline = time.monotonic() + timeout
    batch = None
    while time.monotonic() < deadline:
        batch = led.batch(batch_id)
        if batch is not None and batch.state in states:
            return batch
        time.sleep(0.3)
    raise AssertionError(
        f"batch {batch_id} is {batch.state if batch else None} after {timeout}s: "
        f"items {led.item_counts(batch_id)}, "
        f"steps {led.step_counts(batch_id)}"
    )


def stored_objects(stack: EmbeddedStack, prefix: str = "") -> dict[str, bytes]:
    client = stack.s3.client()  # type: ignore[union-attr]
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=stack.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=stack.bucket, Key=obj["Key"])["Body"].read()
    return out


def manifest(stack: EmbeddedStack, batch_id: str) -> dict[str, Any]:
    batch = ledger(stack).batch(batch_id)
    assert batch is not None and batch.manifest_key, "no manifest written"
    return json.loads(stored_objects(stack, batch.manifest_key)[batch.manifest_key])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_outputs_match_sources(stack: EmbeddedStack, batch_id: str) -> int:
    """Every output in the manifest is in S3 with the recorded sha256, equal to what the simulator serves."""
    doc = manifest(stack, batch_id)
    led = ledger(stack)
    objects = stored_objects(stack, f"{doc['batch']['name']}/{batch_id}/")
    count = 0
    for item in doc["items"]:
        for out in item["outputs"]:
            data = objects[out["key"]]
            assert sha256(data) == out["sha256"] and len(data) == out["size"]
            count += 1
    for st in led.steps_in(batch_id, ("done",)):
        for out in st.outputs:
            served = requests.get(out["source_url"], timeout=10).content
            assert sha256(served) == out["sha256"]
    from tests.lineage import check_lineage

    assert stack.sim is not None
    lineage = check_lineage(led, batch_id, stack.sim.url)
    lineage.assert_clean()
    assert lineage.checked >= len(led.steps_in(batch_id, ("done",))), "a done step with no job to trace"
    return count


def assert_lineage(stack: EmbeddedStack, batch_id: str) -> int:
    """Every job a step of the batch holds came from its own item's request (tests/lineage.py); how many."""
    from tests.lineage import check_lineage

    assert stack.sim is not None
    lineage = check_lineage(ledger(stack), batch_id, stack.sim.url)
    lineage.assert_clean()
    return lineage.checked


def posts_per_job(stack: EmbeddedStack) -> dict[str, Any]:
    return stack.sim.counters(by_job=True)  # type: ignore[union-attr]


def task_runs(stack: EmbeddedStack) -> dict[str, int]:
    """Task executions per task name so far, over the stack's running workers (their ``inspect stats``)."""
    from celery import Celery

    app = Celery(broker=stack.env["REDIS_URL"])
    try:
        replies = app.control.inspect(timeout=3).stats() or {}
    finally:
        app.close()
    totals: dict[str, int] = {}
    for reply in replies.values():
        for name, count in reply.get("total", {}).items():
            totals[name] = totals.get(name, 0) + int(count)
    return totals
