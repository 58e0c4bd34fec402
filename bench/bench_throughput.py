"""Throughput: N single-image jobs at latency L under an in-flight cap C, against the ideal and the baseline.

Prints ONE JSON line: letzflow's wall/ideal, wall/baseline, polls and API requests per job, Redis commands
per job, worker CPU seconds per job; the baseline script's wall/ideal and polls per job at each interval.

Usage: ``.venv/bin/python -m bench.bench_throughput [--items 2000] [--latency 2] [--inflight 100]``
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.engine_run import EngineRun, measure
from bench.harness import emit


def parse(argv: list[str] | None = None, steps: str = "generate", items: int = 2000) -> EngineRun:
    """Command-line options to an :class:`EngineRun`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=items)
    parser.add_argument("--steps", default=steps)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--jitter", type=float, default=0.3)
    parser.add_argument("--inflight", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=0, help="items run first (learned durations warm)")
    parser.add_argument(
        "--workers", default='[{"pool": "prefork", "concurrency": 4}]', help="JSON list of worker options"
    )
    parser.add_argument(
        "--baseline-intervals", default="2", help="comma-separated poll intervals; empty: none"
    )
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    return EngineRun(
        items=args.items,
        steps=args.steps.split(","),
        latency=args.latency,
        jitter=args.jitter,
        inflight=args.inflight,
        warmup_items=args.warmup,
        workers=json.loads(args.workers),
        baseline_intervals=[float(x) for x in args.baseline_intervals.split(",") if x],
        timeout=args.timeout,
    )


def main(argv: list[str] | None = None) -> int:
    run = parse(argv)
    emit("throughput", **measure(run, "bench-throughput"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
