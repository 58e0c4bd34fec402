"""Webhooks: the throughput they buy, and what a flood of forged calls costs.

Prints ONE JSON line with two parts, measured in one run on this machine:

- ``throughput``: one step, N jobs at latency L under cap C, **cold** (fresh Redis and ledger, nothing
  learned), with webhooks on; then the same batch polling only on another fresh stack; then the
  thread-pool baseline (2 s and 0.5 s polls). Wall / ideal and GETs per job for each, and the ratios.
- ``flood``: on a stack with the receiver and one worker, F POSTs with random tokens from T threads, first
  alone (what they enqueue: Redis pushes; what they write: the ledger files' size and mtime; the
  receiver's memory), then while a real batch of N jobs runs (its wall and how late its jobs were seen
  against the same batch without a flood, and the forged calls' answer latency).

Usage: ``.venv/bin/python -m bench.bench_webhooks [--items 300] [--inflight 50] [--latency 2] [--flood
10000] [--skip throughput|flood]``
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.engine_run import EngineRun, measure, submit_and_wait, timeline, write_spec
from bench.harness import emit, load, worker_env
from letzai.webhook_tokens import new_token
from storage.ledger import Ledger
from workers.stack import EmbeddedStack


def throughput(run: EngineRun) -> dict[str, Any]:
    """Cold with webhooks, cold polling only, and the pools: the figures and the ratios."""
    hooked = measure(dataclasses.replace(run, webhooks=True, baseline_intervals=[]), "bench-hooks")
    polled = measure(dataclasses.replace(run, webhooks=False), "bench-polled")
    h, p = hooked["letzflow"], polled["letzflow"]
    pools = {f"pool_{b['interval_s']:g}s": b for b in polled["baseline"]}
    return {
        "ideal_s": hooked["ideal_s"],
        "webhooks": h,
        "polling": p,
        "pools": pools,
        "ratios": {
            "hooks_over_ideal": h["wall_over_ideal"],
            "hooks_gets_per_job": h["polls_per_job"],
            "polling_over_ideal": p["wall_over_ideal"],
            "polling_gets_per_job": p["polls_per_job"],
            "hooks_over_polling": round(h["wall_s"] / p["wall_s"], 3),
            **{f"{k}_over_ideal": v["wall_over_ideal"] for k, v in pools.items()},
        },
    }


def _pushes(stack: EmbeddedStack) -> int:
    assert stack.redis is not None
    stats = stack.redis.client().info("commandstats")
    return sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in ("lpush", "rpush", "zadd"))


def _ledger_files(stack: EmbeddedStack) -> dict[str, tuple[float, int]]:
    base = stack.database_path
    files = [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-journal")]
    return {f.name: (f.stat().st_mtime, f.stat().st_size) for f in files if f.exists()}


def knock(url: str, total: int, threads: int) -> dict[str, Any]:
    """``total`` POSTs with random tokens from ``threads`` threads; codes and answer latency."""
    latencies: list[float] = []
    codes: dict[int, int] = {}
    lock = threading.Lock()

    def run(n: int) -> None:
        with requests.Session() as session:
            for _ in range(n):
                t = time.perf_counter()
                code = session.post(f"{url}/{new_token()}", json={"id": "forged"}, timeout=30).status_code
                with lock:
                    latencies.append(time.perf_counter() - t)
                    codes[code] = codes.get(code, 0) + 1

    started = time.monotonic()
    workers = [threading.Thread(target=run, args=(total // threads,)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    latencies.sort()
    took = time.monotonic() - started
    return {
        "posts": len(latencies),
        "codes": codes,
        "per_s": round(len(latencies) / took, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 2),
        "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 2),
    }


def flood(run: EngineRun, total: int, threads: int) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="letzflow-bench-") as tmp,
        EmbeddedStack(sim_knobs=run.sim_knobs(), webhooks=True) as stack,
    ):
        assert stack.webhooks is not None and stack.webhooks.pid is not None and stack.sim is not None
        env = worker_env(run.inflight, LETZFLOW_RECONCILE_EVERY="3600")
        stack.start_worker(env=env, loglevel="WARNING", pool="prefork", concurrency=4).wait_ready()
        url = stack.env["LETZFLOW_WEBHOOK_URL"]
        receiver = psutil.Process(stack.webhooks.pid)
        deadline = time.monotonic() + run.timeout
        # a quiet batch first: the wall and lateness without a flood (it also warms the durations)
        _, quiet_state, quiet_wall = submit_and_wait(
            stack, write_spec(Path(tmp), "quiet", run.steps, run.items), deadline
        )
        led = Ledger(stack.env["DATABASE_URL"])
        t0 = time.monotonic()
        _, quiet2_state, quiet2_wall = submit_and_wait(
            stack, write_spec(Path(tmp), "quiet2", run.steps, run.items), deadline
        )
        quiet_seen = timeline(stack.sim.url, t0, quiet2_wall, run.inflight, led).get("seen_after_s")
        rss_before = receiver.memory_info().rss
        pushes, files = _pushes(stack), _ledger_files(stack)
        alone = knock(url, total, threads)
        alone |= {
            "pushes": _pushes(stack) - pushes,
            "ledger_changed": _ledger_files(stack) != files,
            "receiver_rss_mb": [round(rss_before / 2**20, 1), round(receiver.memory_info().rss / 2**20, 1)],
        }
        box: dict[str, Any] = {}
        thread = threading.Thread(target=lambda: box.update(knock(url, total, threads)))
        t0 = time.monotonic()
        thread.start()
        _, state, wall = submit_and_wait(
            stack, write_spec(Path(tmp), "flooded", run.steps, run.items), deadline
        )
        thread.join()
        seen = timeline(stack.sim.url, t0, wall, run.inflight, led).get("seen_after_s")
        return {
            "forged_alone": alone,
            "forged_during_batch": box,
            "batch_quiet": {
                "state": quiet2_state,
                "wall_s": round(quiet2_wall, 2),
                "seen_after_s": quiet_seen,
            },
            "batch_flooded": {"state": state, "wall_s": round(wall, 2), "seen_after_s": seen},
            "flooded_over_quiet": round(wall / quiet2_wall, 3),
            "first_batch": {"state": quiet_state, "wall_s": round(quiet_wall, 2)},
            "receiver_rss_mb_after": round(receiver.memory_info().rss / 2**20, 1),
            "receiver_health": stack.webhooks.health(),
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--inflight", type=int, default=50)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--jitter", type=float, default=0.3)
    parser.add_argument("--flood", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--skip", default="", help="throughput or flood")
    args = parser.parse_args(argv)
    run = EngineRun(
        items=args.items,
        steps=["generate"],
        latency=args.latency,
        inflight=args.inflight,
        jitter=args.jitter,
        baseline_intervals=[2.0, 0.5],
    )
    fields: dict[str, Any] = {"load_start": load()}
    if "throughput" not in args.skip:
        fields["throughput"] = throughput(run)
    if "flood" not in args.skip:
        fields["flood"] = flood(run, args.flood, args.threads)
    fields["load_end"] = load()
    emit("webhooks", **fields)
    return 0


if __name__ == "__main__":
    sys.exit(main())
