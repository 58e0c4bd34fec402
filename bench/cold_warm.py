"""Cold and warm runs of one benchmark, over a latency sweep, each against the thread-pool baseline.

For every latency L of the sweep:

- **cold**: a fresh stack (new Redis, new ledger, nothing learned), the measured batch at once, then the
  baseline script at each of its poll intervals on the same simulator;
- **warm**: another fresh stack, a warm-up batch of ``warmup`` items first (one wave of C teaches the cold
  start everything), then the measured batch;
- **restored** (asked for explicitly): as warm, but Redis's learned durations are deleted after the
  warm-up, as a new Redis would have none: the measured batch starts from the ledger's copy.

The JSON line carries every run's figures and, per L, the ratios the goals are stated in
(:func:`ratios`): wall / ideal cold and warm, polls and API requests per job, the baseline's at each
interval, and whether letzflow beat the 2 s pool on time while using fewer requests than the 0.5 s one.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

from bench.engine_run import EngineRun, measure
from bench.harness import load

#: Seconds to wait at most for the machine to quieten before each run (1-minute load below LOAD_QUIET).
QUIET_WAIT = 600.0
LOAD_QUIET = 1.5


def wait_for_quiet(max_wait: float = QUIET_WAIT) -> list[float]:
    """Wait (polling every 20 s, up to ``max_wait``) for the 1-minute load average to drop below
    :data:`LOAD_QUIET`; the load averages when the run starts (recorded in the JSON line either way)."""
    deadline = time.monotonic() + max_wait
    while os.getloadavg()[0] >= LOAD_QUIET and time.monotonic() < deadline:
        time.sleep(20)
    return load()


def _baseline(figures: list[dict[str, Any]], interval: float) -> dict[str, Any] | None:
    return next((b for b in figures if b["interval_s"] == interval), None)


def ratios(
    cold: dict[str, Any] | None,
    warm: dict[str, Any] | None,
    baseline: list[dict[str, Any]],
    restored: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The figures the goals are stated in, for one latency (None where a run is missing)."""
    out: dict[str, Any] = {}
    for mode, run in (("cold", cold), ("warm", warm), ("restored", restored)):
        if run is None:
            continue
        engine = run["letzflow"]
        out[f"{mode}_over_ideal"] = engine["wall_over_ideal"]
        out[f"{mode}_polls_per_job"] = engine["polls_per_job"]
        out[f"{mode}_requests_per_job"] = engine["api_requests_per_job"]
    for b in baseline:
        tag = f"{b['interval_s']:g}s"
        out[f"pool_{tag}_over_ideal"] = b["wall_over_ideal"]
        out[f"pool_{tag}_polls_per_job"] = b["polls_per_job"]
        if cold is not None:
            out[f"cold_over_pool_{tag}"] = round(cold["letzflow"]["wall_s"] / b["wall_s"], 3)
    slow, chatty = _baseline(baseline, 2.0), _baseline(baseline, 0.5)
    for mode, run in (("cold", cold), ("warm", warm)):
        if run is None or slow is None or chatty is None:
            continue
        engine = run["letzflow"]
        # the pool sends one POST and its polls per job; letzflow's requests count POSTs, GETs and lists
        out[f"{mode}_beats_pools"] = bool(
            engine["wall_over_ideal"] < slow["wall_over_ideal"]
            and engine["api_requests_per_job"] < chatty["polls_per_job"] + 1.0
        )
    return out


def sweep(run: EngineRun, name: str, latencies: list[float], modes: list[str], warmup: int) -> dict[str, Any]:
    """Run ``modes`` (cold, warm) at every latency; the JSON fields of the benchmark."""
    results: list[dict[str, Any]] = []
    for latency in latencies:
        at = dataclasses.replace(run, latency=latency)
        cold = warm = None
        baseline: list[dict[str, Any]] = []
        if "cold" in modes:
            started_load = wait_for_quiet()
            cold = measure(dataclasses.replace(at, warmup_items=0), f"{name}-cold")
            cold["load_at_start"] = started_load
            baseline = cold.pop("baseline")
            cold.pop("wall_over_baseline", None)
        if "warm" in modes:
            started_load = wait_for_quiet()
            warm_run = dataclasses.replace(
                at, warmup_items=warmup, baseline_intervals=[] if baseline else at.baseline_intervals
            )
            warm = measure(warm_run, f"{name}-warm")
            warm["load_at_start"] = started_load
            baseline = baseline or warm.pop("baseline")
            warm.pop("baseline", None)
            warm.pop("wall_over_baseline", None)
        restored = None
        if "restored" in modes:
            started_load = wait_for_quiet()
            restored_run = dataclasses.replace(
                at,
                warmup_items=warmup,
                forget_learned=True,
                baseline_intervals=[] if baseline else at.baseline_intervals,
            )
            restored = measure(restored_run, f"{name}-restored")
            restored["load_at_start"] = started_load
            baseline = baseline or restored.pop("baseline")
            restored.pop("baseline", None)
            restored.pop("wall_over_baseline", None)
        results.append(
            {
                "latency_s": latency,
                "ideal_s": round(at.ideal, 2),
                "ratios": ratios(cold, warm, baseline, restored),
                "cold": cold,
                "warm": warm,
                "restored": restored,
                "baseline": baseline,
            }
        )
    return {
        "items": run.items,
        "steps": run.steps,
        "inflight": run.inflight,
        "jitter": run.jitter,
        "video_factor": run.video_factor,
        "workers": run.workers,
        "warmup_items": warmup,
        "ratios": {f"L={r['latency_s']:g}": r["ratios"] for r in results},
        "runs": results,
    }
