"""Run every benchmark, one after the other, each in its own process; their JSON lines go to stdout.

Usage: ``.venv/bin/python -m bench.run_all [--quick] [--only throughput,media]``

``--quick`` runs reduced sizes (a smoke run of a few minutes); the defaults are the sizes of issues #7
and #16.
Each benchmark bounds itself with a timeout; a failed one prints ``{"bench": NAME, "error": ...}``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from bench.harness import ROOT

FULL: dict[str, list[str]] = {
    "sim_capacity": ["bench/bench_sim.py"],
    "throughput": [
        "-m",
        "bench.bench_throughput",
        "--items",
        "300",
        "--inflight",
        "50",
        "--sweep",
        "0.5,2,8",
    ],
    "pipeline": ["-m", "bench.bench_pipeline", "--items", "100", "--inflight", "50", "--sweep", "0.5,2,8"],
    "throughput_large": ["-m", "bench.bench_throughput", "--items", "2000", "--inflight", "100"],
    "scale": ["-m", "bench.bench_scale", "--items", "20000"],
    "media": ["-m", "bench.bench_media", "--size-mb", "1024"],
    "webhooks": ["-m", "bench.bench_webhooks", "--items", "300", "--inflight", "50", "--flood", "10000"],
}
QUICK: dict[str, list[str]] = {
    "sim_capacity": ["bench/bench_sim.py", "--seconds", "4"],
    "throughput": ["-m", "bench.bench_throughput", "--items", "150", "--inflight", "50"],
    "pipeline": ["-m", "bench.bench_pipeline", "--items", "60", "--inflight", "30"],
    "scale": ["-m", "bench.bench_scale", "--items", "1000"],
    "media": ["-m", "bench.bench_media", "--size-mb", "128"],
    "webhooks": ["-m", "bench.bench_webhooks", "--items", "150", "--inflight", "50", "--flood", "2000"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="")
    parser.add_argument("--timeout", type=float, default=4000.0, help="seconds per benchmark")
    args = parser.parse_args()
    table = QUICK if args.quick else FULL
    names = [n for n in args.only.split(",") if n] or list(table)
    failed = 0
    for name in names:
        try:
            done = subprocess.run(
                [sys.executable, *table[name]], cwd=ROOT, capture_output=True, text=True, timeout=args.timeout
            )
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            if done.returncode != 0 or not lines:
                raise RuntimeError(done.stderr[-1500:] or f"exit {done.returncode}")
            print(lines[-1], flush=True)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            failed += 1
            print(json.dumps({"bench": name, "error": str(exc)[-1500:]}), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
