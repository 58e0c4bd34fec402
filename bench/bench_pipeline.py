"""Pipeline: N items through generate → skin_fix → upscale → animate (video 3·L), cold and warm, against the
ideal and the thread-pool baseline, over a latency sweep.

Prints ONE JSON line with the same figures as ``bench_throughput``; the ideal is ceil(N / C) · (3·L + 3·L).

Usage: ``.venv/bin/python -m bench.bench_pipeline [--items 100] [--inflight 50] [--sweep 0.5,2,8]``
"""

from __future__ import annotations

import sys

from bench.bench_throughput import parse
from bench.cold_warm import sweep
from bench.harness import emit


def main(argv: list[str] | None = None) -> int:
    run, options = parse(argv, steps="generate,skin_fix,upscale,animate", items=100)
    emit("pipeline", **sweep(run, "bench-pipeline", **options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
