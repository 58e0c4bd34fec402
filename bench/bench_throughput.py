"""Throughput: N single-image jobs at latency L under an in-flight cap C, cold and warm, against the ideal
and the thread-pool baseline, over a latency sweep.

Prints ONE JSON line: per latency, letzflow's cold run (fresh Redis and ledger, nothing learned) and warm
run (after a warm-up batch), each with wall / ideal, polls and API requests per job, Redis commands per
job, worker CPU seconds per job and a timeline; the baseline script's wall / ideal and polls per job at each
interval, in the same run; and the ratios the goals are stated in (``bench.cold_warm.ratios``).

Usage: ``.venv/bin/python -m bench.bench_throughput [--items 300] [--inflight 50] [--sweep 0.5,2,8]
[--modes cold,warm]``
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.cold_warm import sweep
from bench.engine_run import EngineRun
from bench.harness import emit


def parse(
    argv: list[str] | None = None, steps: str = "generate", items: int = 300
) -> tuple[EngineRun, dict[str, Any]]:
    """Command-line options to an :class:`EngineRun` and the sweep's options (latencies, modes, warm-up)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=items)
    parser.add_argument("--steps", default=steps)
    parser.add_argument(
        "--latency", type=float, default=2.0, help="image latency L when --sweep is not given"
    )
    parser.add_argument("--sweep", default="", help="comma-separated latencies, e.g. 0.5,2,8 (videos 3x)")
    parser.add_argument("--modes", default="cold,warm", help="cold, warm, restored (comma-separated)")
    parser.add_argument("--jitter", type=float, default=0.3)
    parser.add_argument("--inflight", type=int, default=50)
    parser.add_argument("--video-factor", type=float, default=3.0)
    parser.add_argument("--warmup", type=int, default=0, help="warm-up items of a warm run (default: C)")
    parser.add_argument(
        "--workers", default='[{"pool": "prefork", "concurrency": 4}]', help="JSON list of worker options"
    )
    parser.add_argument(
        "--baseline-intervals", default="2,0.5", help="comma-separated poll intervals; empty: none"
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    parser.add_argument(
        "--webhooks", action="store_true", help="run the webhook receiver; the simulator calls it"
    )
    args = parser.parse_args(argv)
    run = EngineRun(
        items=args.items,
        steps=args.steps.split(","),
        latency=args.latency,
        jitter=args.jitter,
        inflight=args.inflight,
        video_factor=args.video_factor,
        workers=json.loads(args.workers),
        baseline_intervals=[float(x) for x in args.baseline_intervals.split(",") if x],
        timeout=args.timeout,
        webhooks=args.webhooks,
    )
    options = {
        "latencies": [float(x) for x in args.sweep.split(",") if x] or [args.latency],
        "modes": [m for m in args.modes.split(",") if m],
        "warmup": args.warmup or args.inflight,
    }
    return run, options


def main(argv: list[str] | None = None) -> int:
    run, options = parse(argv)
    emit("throughput", **sweep(run, "bench-throughput", **options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
