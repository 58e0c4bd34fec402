"""Many batches, one account: priority lanes and weighted fair share under the global in-flight cap.

On one embedded stack (a prefork worker, the simulator at L s per image, cap C), warmed up first, and in
one run:
1. ``urgent``: a 10-item ``high`` batch alone, then the same 10 items started 8 s after a ``normal`` batch
   of ``--big`` items that holds the cap: ``urgent_ratio`` = with the big batch / alone (goal <= 1.5);
2. ``equal``: two equal batches started together: the first's share of the jobs created while both were
   backlogged (goal 50 % +- 10);
3. ``weighted``: the same with weights 2 : 1 (goal 67 % +- 10);
4. ``alone`` vs ``three``: one ``low`` batch of 3n items alone (its peak concurrency should be C:
   work-conserving) against three batches of n started together (``three_throughput_ratio``, goal within
   5 % of 1).

    .venv/bin/python -m bench.bench_lanes [--latency 1 --inflight 20 --big 600 --items 150]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from bench.engine_run import batch_id_of, run_cli, wait_done
from bench.harness import load, machine
from storage.ledger import Ledger
from workers.stack import EmbeddedStack

STEP = [{"generate": {"width": 520, "height": 520, "hasWatermark": False}}]


def spec(folder: Path, name: str, items: int, **lane: Any) -> Path:
    doc = {
        "name": name,
        "steps": STEP,
        "items": [{"id": f"{name}-{n:05d}", "prompt": f"{name} item {n}"} for n in range(items)],
        **lane,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def start(stack: EmbeddedStack, path: Path) -> str:
    result = run_cli(stack, "run", str(path))
    if result.returncode != 0:
        raise RuntimeError(result.stdout[-500:] + result.stderr[-2000:])
    return batch_id_of(result.stdout)


def created(stack: EmbeddedStack) -> list[tuple[float, str]]:
    """(creation time, batch name) of every job, from the simulator's recorded requests."""
    rows = requests.get(f"{stack.sim.url}/_sim/jobs", timeout=30).json()  # type: ignore[union-attr]
    return sorted(
        (r["created_mono"], str((r.get("request") or {}).get("prompt", "")).split(" ")[0]) for r in rows
    )


def share_while_backlogged(jobs: list[tuple[float, str]], a: str, b: str, items: int) -> float:
    """``a``'s share of the jobs created until either batch had all its jobs created."""
    counts = {a: 0, b: 0}
    for _t, name in jobs:
        if name in counts:
            counts[name] += 1
            if counts[name] >= items:
                break
    return counts[a] / max(1, counts[a] + counts[b])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--inflight", type=int, default=20)
    parser.add_argument("--big", type=int, default=600)
    parser.add_argument("--items", type=int, default=150, help="items of each batch in 2-4")
    args = parser.parse_args(argv)
    env = {"LETZAI_MAX_INFLIGHT": str(args.inflight), "LETZAI_MAX_RPS": "500"}
    knobs = {"latency_image": args.latency, "jitter": 0.2, "seed": 3, "max_concurrent_jobs": args.inflight}
    out: dict[str, Any] = {"bench": "lanes", "latency": args.latency, "inflight": args.inflight}
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedStack(sim_knobs=knobs, worker_options={"env": env}) as stack,
    ):
        folder = Path(tmp)
        stack.start_worker(env=env, pool="prefork", concurrency=4)
        led = Ledger(stack.env["DATABASE_URL"])
        deadline = time.monotonic() + 1200
        wait_done(led, start(stack, spec(folder, "warmup", 3 * args.inflight)), deadline)

        t0 = time.monotonic()
        wait_done(led, start(stack, spec(folder, "urgentalone", 10, priority="high")), deadline)
        alone = time.monotonic() - t0
        big = start(stack, spec(folder, "big", args.big))
        time.sleep(8)
        t0 = time.monotonic()
        wait_done(led, start(stack, spec(folder, "urgent", 10, priority="high")), deadline)
        with_big = time.monotonic() - t0
        wait_done(led, big, deadline)
        out["urgent"] = {"alone_s": round(alone, 2), "with_big_s": round(with_big, 2), "big_items": args.big}
        out["urgent_ratio"] = round(with_big / alone, 2)

        for case, weights in (("equal", (1, 1)), ("weighted", (2, 1))):
            a = start(stack, spec(folder, f"{case}a", args.items, weight=weights[0]))
            b = start(stack, spec(folder, f"{case}b", args.items, weight=weights[1]))
            wait_done(led, a, deadline)
            wait_done(led, b, deadline)
            out[f"{case}_share"] = round(
                share_while_backlogged(created(stack), f"{case}a", f"{case}b", args.items), 3
            )

        t0 = time.monotonic()
        wait_done(led, start(stack, spec(folder, "lowalone", 3 * args.items, priority="low")), deadline)
        one = time.monotonic() - t0
        peak = stack.sim.counters()["max_concurrent"]  # type: ignore[union-attr]
        t0 = time.monotonic()
        ids = [
            start(stack, spec(folder, f"three{k}", args.items, priority=p))
            for k, p in enumerate(("low", "normal", "high"))
        ]
        for batch_id in ids:
            wait_done(led, batch_id, deadline)
        three = time.monotonic() - t0
        out["alone_s"], out["three_s"] = round(one, 2), round(three, 2)
        out["three_throughput_ratio"] = round(three / one, 3)
        out["peak_concurrent"] = peak
        out["load"] = load()
    print(json.dumps({**out, **machine()}))


if __name__ == "__main__":
    main()
