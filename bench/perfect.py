"""What a perfect scheduler reaches against the benchmarks' ideal: the bound under the jitter itself.

The ideal of ``bench/`` (``ceil(N / C) · Σ L``) packs jobs in full waves, as if every job took exactly L.
The benchmarks draw each job's duration uniformly in L·(1 ± jitter), and no scheduler knows a job's
duration before it ends. This replays the same draws through a scheduler with no overhead at all (a
freed slot is refilled the same instant, first ready first served, no POST, no look, no copy) and
prints its makespan over the ideal: the floor no engine, thread pool or webhook gets under.

Usage: ``.venv/bin/python -m bench.perfect [--runs 200]``; prints ONE JSON line.
"""

from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import sys


def makespan(latencies: list[float], items: int, cap: int, jitter: float, rng: random.Random) -> float:
    """Seconds from the first POST to the last job's end, each item's steps in order, ``cap`` in flight."""
    ready = [(0.0, item, 0) for item in range(items)]  # (ready at, item, step)
    heapq.heapify(ready)
    running: list[tuple[float, int, int]] = []  # (ends at, item, step)
    now, end, free = 0.0, 0.0, cap
    while ready or running:
        while free > 0 and ready and ready[0][0] <= now:
            _, item, step = heapq.heappop(ready)
            heapq.heappush(running, (now + latencies[step] * rng.uniform(1 - jitter, 1 + jitter), item, step))
            free -= 1
        upcoming = [running[0][0]] if running else []
        if ready and free > 0:
            upcoming.append(ready[0][0])
        now = min(upcoming)
        while running and running[0][0] <= now:
            ended, item, step = heapq.heappop(running)
            free += 1
            end = max(end, ended)
            if step + 1 < len(latencies):
                heapq.heappush(ready, (ended, item, step + 1))
    return end


def bound(latencies: list[float], items: int, cap: int, jitter: float, runs: int) -> dict[str, float]:
    ideal = -(-items // cap) * sum(latencies)
    spans = [makespan(latencies, items, cap, jitter, random.Random(seed)) for seed in range(runs)]
    return {
        "ideal_s": ideal,
        "perfect_mean_s": round(statistics.mean(spans), 2),
        "perfect_over_ideal": round(statistics.mean(spans) / ideal, 3),
        "perfect_best_over_ideal": round(min(spans) / ideal, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--jitter", type=float, default=0.3)
    args = parser.parse_args(argv)
    out = {"bench": "perfect_scheduler", "jitter": args.jitter, "runs": args.runs}
    for latency in (0.5, 2.0, 8.0):
        out[f"throughput_L={latency:g}"] = bound([latency], 300, 50, args.jitter, args.runs)
        video = 3 * latency
        out[f"pipeline_L={latency:g}"] = bound([latency] * 3 + [video], 100, 50, args.jitter, args.runs)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
