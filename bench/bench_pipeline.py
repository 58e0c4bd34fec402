"""Pipeline: N items through generate → skin_fix → upscale → animate (video 3·L), against ideal and baseline.

Prints ONE JSON line with the same figures as ``bench_throughput``; the ideal is ceil(N / C) · (3·L + 3·L).

Usage: ``.venv/bin/python -m bench.bench_pipeline [--items 500] [--latency 2] [--inflight 100]``
"""

from __future__ import annotations

import sys

from bench.bench_throughput import parse
from bench.engine_run import measure
from bench.harness import emit


def main(argv: list[str] | None = None) -> int:
    run = parse(argv, steps="generate,skin_fix,upscale,animate", items=500)
    emit("pipeline", **measure(run, "bench-pipeline"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
