"""Scale: a large batch (20,000 items, 2 steps, L = 0.2 s) completes with bounded Redis and producer memory.

``letzflow run`` writes the batch to the ledger and starts its feeder; workers feed items in windows. This
samples the producer's RSS while it runs, Redis ``used_memory_peak`` at the end, the ledger's size on disk,
the producer's item write rate and the feeder's enqueue rate (items moved to queued per second). Prints
ONE JSON line.

Usage: ``.venv/bin/python -m bench.bench_scale [--items 20000] [--latency 0.2] [--inflight 100]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench.engine_run import EngineRun, batch_id_of, write_spec
from bench.harness import ROOT, emit, redis_peak_memory, tree_cpu_seconds, worker_env
from storage.ledger import Ledger
from workers.stack import EmbeddedStack

REDIS_LIMIT_MB = 256


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--inflight", type=int, default=100)
    parser.add_argument("--workers", default='[{"pool": "prefork", "concurrency": 4}]')
    parser.add_argument("--timeout", type=float, default=3600.0)
    args = parser.parse_args(argv)
    run = EngineRun(
        items=args.items,
        steps=["generate", "upscale"],
        latency=args.latency,
        inflight=args.inflight,
        workers=json.loads(args.workers),
    )
    with (
        tempfile.TemporaryDirectory(prefix="letzflow-scale-") as tmp,
        EmbeddedStack(sim_knobs=run.sim_knobs()) as stack,
    ):
        assert stack.redis is not None
        workers = [
            stack.start_worker(env=worker_env(args.inflight), loglevel="WARNING", **o) for o in run.workers
        ]
        pids = [w.pid for w in workers if w.pid]
        spec = write_spec(Path(tmp), "bench-scale", run.steps, args.items)
        started = time.monotonic()
        producer = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "run", str(spec)],
            cwd=ROOT,
            env={**os.environ, **stack.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ps = psutil.Process(producer.pid)
        peak_rss = 0
        while producer.poll() is None:
            try:
                peak_rss = max(peak_rss, ps.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        out, err = producer.communicate()
        produced = time.monotonic() - started
        if producer.returncode != 0:
            raise RuntimeError(f"letzflow run failed: {out[-500:]} {err[-2000:]}")
        batch_id = batch_id_of(out)
        ledger = Ledger(stack.env["DATABASE_URL"])
        deadline = started + args.timeout
        state, fed_samples = "running", []
        while time.monotonic() < deadline:
            batch = ledger.batch(batch_id)
            state = batch.state if batch else "missing"
            if state not in ("running", "finalizing"):
                break
            counts = ledger.item_counts(batch_id)
            fed_samples.append((time.monotonic(), args.items - counts.get("pending", 0)))
            time.sleep(2.0)
        wall = time.monotonic() - started
        counts = ledger.item_counts(batch_id)
        cpu = tree_cpu_seconds(pids)
        redis_peak = redis_peak_memory(stack.redis.client())
        db = stack.database_path
        ledger_bytes = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
    fed_done = next((t for t, n in fed_samples if n >= args.items), None)
    enqueue_rate = args.items / (fed_done - started) if fed_done else None
    emit(
        "scale",
        items=args.items,
        steps=run.steps,
        latency_s=args.latency,
        inflight=args.inflight,
        workers=run.workers,
        state=state,
        item_counts=counts,
        wall_s=round(wall, 1),
        ideal_s=round(run.ideal, 1),
        wall_over_ideal=round(wall / run.ideal, 3),
        producer_s=round(produced, 2),
        producer_items_per_s=round(args.items / produced, 1),
        producer_peak_rss_mb=round(peak_rss / 2**20, 1),
        enqueue_items_per_s=round(enqueue_rate, 1) if enqueue_rate else None,
        redis_peak_mb=round(redis_peak / 2**20, 1),
        redis_within_limit=redis_peak < REDIS_LIMIT_MB * 2**20,
        ledger_mb=round(ledger_bytes / 2**20, 1),
        worker_cpu_s_per_job=round(cpu / (2 * args.items), 4),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
