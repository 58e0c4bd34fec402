"""One measured letzflow batch (and the baseline script) on a fresh embedded stack.

Used by ``bench_throughput.py`` and ``bench_pipeline.py``: starts redis-server, moto S3, the simulator and
Celery workers on 127.0.0.1, submits a batch with ``letzflow run`` as a user would, waits for it to finish
(bounded), and reads the figures: wall time, API requests per job (simulator counters), Redis commands per
job (INFO commandstats), worker CPU seconds per job (psutil over the worker process trees). Then the
baseline script runs on the same simulator, with the same settings, in the same run.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.harness import (
    ROOT,
    ideal_seconds,
    redis_command_counts,
    sim_api_counts,
    task_totals,
    tree_cpu_seconds,
    worker_env,
)
from storage.ledger import Ledger
from workers.stack import EmbeddedStack

#: Spec step per kind, with the simulator latency knob that sets its duration.
SPEC_STEPS: dict[str, tuple[dict[str, Any], str]] = {
    "generate": ({"generate": {"width": 520, "height": 520, "hasWatermark": False}}, "latency_image"),
    "skin_fix": ({"skin_fix": {"intensity": 3}}, "latency_image_edit"),
    "upscale": ({"upscale": {"strength": 1, "size": 4}}, "latency_upscale"),
    "animate": (
        {"animate": {"prompt": "slow orbit", "settings": {"mode": "default", "duration": 4}}},
        "latency_video",
    ),
}


@dataclass
class EngineRun:
    """A benchmark's parameters."""

    items: int
    steps: list[str]
    latency: float
    inflight: int
    jitter: float = 0.3
    video_factor: float = 3.0
    workers: list[dict[str, Any]] = field(default_factory=lambda: [{"pool": "prefork", "concurrency": 4}])
    timeout: float = 900.0
    warmup_items: int = 0
    baseline_intervals: list[float] = field(default_factory=lambda: [2.0])
    #: After the warm-up, drop Redis's learned durations (as a new Redis would): the ledger's copy is used.
    forget_learned: bool = False
    #: Run the webhook receiver and have the simulator call it (``LETZFLOW_WEBHOOK_URL`` set).
    webhooks: bool = False

    def step_latency(self, step: str) -> float:
        return self.latency * (self.video_factor if step == "animate" else 1.0)

    def sim_knobs(self) -> dict[str, Any]:
        knobs: dict[str, Any] = {"jitter": self.jitter, "seed": 11, "max_concurrent_jobs": self.inflight}
        for step in SPEC_STEPS.values():
            knobs[step[1]] = self.latency
        knobs["latency_video"] = self.latency * self.video_factor
        return knobs

    @property
    def ideal(self) -> float:
        return ideal_seconds(self.items, self.inflight, [self.step_latency(s) for s in self.steps])


def write_spec(directory: Path, name: str, steps: list[str], items: int) -> Path:
    """A batch spec with ``items`` items through ``steps``, each job paid: ``reuse: false``, so a warm-up
    or an earlier batch on the same stack with the same prompts is not reused instead of rendered."""
    spec = {
        "name": name,
        "reuse": False,
        "steps": [SPEC_STEPS[s][0] for s in steps],
        "items": [{"id": f"i{n:06d}", "prompt": f"bench item {n}"} for n in range(items)],
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_cli(stack: EmbeddedStack, *args: str) -> subprocess.CompletedProcess[str]:
    """``letzflow ARGS`` against the stack."""
    import os

    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**os.environ, **stack.env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def batch_id_of(output: str) -> str:
    """The batch id ``letzflow run`` printed (a 12-hex-digit line)."""
    for line in output.splitlines():
        word = line.strip()
        if len(word) == 12 and all(c in "0123456789abcdef" for c in word):
            return word
    raise RuntimeError(f"no batch id in: {output[-500:]}")


def wait_done(ledger: Ledger, batch_id: str, deadline: float) -> str:
    """Wait for the batch to leave running/finalizing, up to ``deadline`` (monotonic); its state."""
    state = "running"
    while time.monotonic() < deadline:
        batch = ledger.batch(batch_id)
        state = batch.state if batch else "missing"
        if state not in ("running", "finalizing", "creating"):
            return state
        time.sleep(0.1)
    return f"timeout ({state})"


def submit_and_wait(stack: EmbeddedStack, spec: Path, deadline: float) -> tuple[str, str, float]:
    """Run a spec; (batch id, final state, wall seconds from the CLI start to the batch's end)."""
    started = time.monotonic()
    result = run_cli(stack, "run", str(spec))
    if result.returncode != 0:
        raise RuntimeError(f"letzflow run failed: {result.stdout[-500:]} {result.stderr[-2000:]}")
    batch_id = batch_id_of(result.stdout)
    state = wait_done(Ledger(stack.env["DATABASE_URL"]), batch_id, deadline)
    return batch_id, state, time.monotonic() - started


def timeline(sim_url: str, t0: float, wall: float, inflight: int, ledger: Ledger) -> dict[str, float]:
    """Where the wall time went, from the simulator's own job list (monotonic clocks of one host).

    ``first_post_s``: from ``letzflow run`` starting to the first job created (validating and writing
    the batch, the feeder's first window). ``busy_share``: job-seconds the API worked over what C slots
    allow between the first creation and the last finish; 1.0 would be the ideal. ``tail_s``: from the
    last job finishing to the batch settled (last look, copy, fan-in, manifest). ``seen_after_s``: mean
    time from a job finishing to the end of the poll that saw it done (its slot is held meanwhile).
    ``handover_s``: median time from the k-th job end to the (C + k)-th job creation (a freed slot's next
    POST), after the first wave; ``handover_p90_s`` its 90th percentile. ``first_wave_s``: from the first
    job created to the C-th.
    """
    from datetime import UTC, datetime

    import requests
    from sqlalchemy import text

    rows = requests.get(f"{sim_url}/_sim/jobs", timeout=30).json()
    jobs = [r for r in rows if r.get("created_mono", 0) >= t0]
    if not jobs:
        return {}
    first = min(r["created_mono"] for r in jobs)
    last_end = max(r["created_mono"] + r["duration"] for r in jobs)
    worked = sum(r["duration"] for r in jobs)
    query = text(
        "SELECT s.remote_id, a.started_at, a.duration_ms FROM step s JOIN attempt a ON a.step_id = s.id "
        "WHERE a.task = 'poll' AND s.remote_id IS NOT NULL"
    )
    seen: dict[str, tuple[Any, int]] = {}
    with ledger.engine.connect() as conn:
        for remote_id, started, ms in conn.execute(query):
            if remote_id not in seen or str(started) > str(seen[remote_id][0]):
                seen[remote_id] = (started, ms)  # the last look: the one that saw the job done
    lags = []
    for r in jobs:
        if r["id"] not in seen:
            continue
        started, ms = seen[r["id"]]
        if isinstance(started, str):
            started = datetime.fromisoformat(started)
        created = datetime.fromisoformat(r["created_at"].replace("Z", "+00:00")).timestamp()
        lags.append(
            started.replace(tzinfo=started.tzinfo or UTC).timestamp() + ms / 1000 - created - r["duration"]
        )
    ends = sorted(r["created_mono"] + r["duration"] for r in jobs)
    starts = sorted(r["created_mono"] for r in jobs)
    gaps = sorted(starts[inflight + k] - ends[k] for k in range(len(jobs) - inflight))
    return {
        "first_post_s": round(first - t0, 2),
        "handover_s": round(gaps[len(gaps) // 2], 3) if gaps else None,
        "handover_p90_s": round(gaps[len(gaps) * 9 // 10], 3) if gaps else None,
        "first_wave_s": round(starts[min(inflight, len(starts)) - 1] - first, 3),
        "busy_share": round(worked / (inflight * (last_end - first)), 3),
        "tail_s": round(t0 + wall - last_end, 2),
        "seen_after_s": round(sum(lags) / max(1, len(lags)), 3),
    }


def measure(run: EngineRun, name: str) -> dict[str, Any]:
    """Run letzflow then the baseline on one stack; the figures of both."""
    from bench.baseline_script import Baseline

    with (
        tempfile.TemporaryDirectory(prefix="letzflow-bench-") as tmp,
        EmbeddedStack(sim_knobs=run.sim_knobs(), webhooks=run.webhooks) as stack,
    ):
        assert stack.redis and stack.sim and stack.s3
        env = worker_env(run.inflight)
        workers = [stack.start_worker(env=env, loglevel="WARNING", **opts) for opts in run.workers]
        for worker in workers:
            worker.wait_ready()
        pids = [w.pid for w in workers if w.pid]
        deadline = time.monotonic() + run.timeout
        if run.warmup_items:
            spec = write_spec(Path(tmp), f"{name}-warmup", run.steps, run.warmup_items)
            submit_and_wait(stack, spec, deadline)
        rclient = stack.redis.client()
        if run.forget_learned:
            rclient.delete(*rclient.keys("letzflow:expected:*") or ["letzflow:expected:none"])
        sim_before = stack.sim.counters()
        redis_before = redis_command_counts(rclient)
        hold_before = rclient.hget("letzflow:inflight:hold", "mean")
        tasks_before = task_totals(stack.env)
        cpu_before = tree_cpu_seconds(pids)
        spec = write_spec(Path(tmp), name, run.steps, run.items)
        t0 = time.monotonic()
        batch_id, state, wall = submit_and_wait(stack, spec, deadline)
        cpu = tree_cpu_seconds(pids) - cpu_before
        redis_counts = redis_command_counts(rclient)
        redis_per = {k: (v - redis_before.get(k, 0)) / max(1, run.items) for k, v in redis_counts.items()}
        redis_used = sum(redis_counts.values()) - sum(redis_before.values())
        tasks_after = task_totals(stack.env)
        runs = {k: v - tasks_before.get(k, 0) for k, v in tasks_after.items()}
        sim_after = stack.sim.counters()
        ledger = Ledger(stack.env["DATABASE_URL"])
        items = ledger.item_counts(batch_id)
        posts_after, polls_after = sim_api_counts(sim_after)
        posts_before, polls_before = sim_api_counts(sim_before)
        jobs = sim_after["jobs_created_total"] - sim_before["jobs_created_total"]
        posts, polls = posts_after - posts_before, polls_after - polls_before
        lists = sim_after["list_calls_total"] - sim_before["list_calls_total"]
        if jobs < run.items * len(run.steps):
            raise RuntimeError(f"{name}: {jobs} jobs created for {run.items} items x {len(run.steps)} steps")
        engine = {
            "state": state,
            "items": items,
            "wall_s": round(wall, 2),
            "jobs": jobs,
            "wall_over_ideal": round(wall / run.ideal, 3),
            "polls_per_job": round(polls / max(1, jobs), 3),
            "api_requests_per_job": round((posts + polls + lists) / max(1, jobs), 3),
            "redis_commands_per_job": round(redis_used / max(1, jobs), 1),
            "redis_top_per_item": {
                k: round(v, 1) for k, v in sorted(redis_per.items(), key=lambda kv: -kv[1])[:12] if v >= 0.5
            },
            "worker_cpu_s_per_job": round(cpu / max(1, jobs), 4),
            "task_runs_per_job": {k: round(v / max(1, jobs), 2) for k, v in sorted(runs.items()) if v},
            "sim_max_concurrent": sim_after["max_concurrent"],
            "slot_hold_s": [
                round(float(h), 3) if h else None
                for h in (hold_before, rclient.hget("letzflow:inflight:hold", "mean"))
            ],
            "timeline": timeline(stack.sim.url, t0, wall, run.inflight, ledger),
        }
        baselines = []
        for interval in run.baseline_intervals:
            before = sim_api_counts(stack.sim.counters())
            result = Baseline(stack.sim.url, stack.s3.url, stack.bucket, interval).run(
                run.items, run.inflight, run.steps
            )
            after = sim_api_counts(stack.sim.counters())
            jobs_b = result.done * len(run.steps) + result.failed
            baselines.append(
                {
                    "interval_s": interval,
                    "wall_s": round(result.wall, 2),
                    "wall_over_ideal": round(result.wall / run.ideal, 3),
                    "polls_per_job": round((after[1] - before[1]) / max(1, jobs_b), 3),
                    "failed": result.failed,
                }
            )
    return {
        "items": run.items,
        "steps": run.steps,
        "latency_s": run.latency,
        "jitter": run.jitter,
        "inflight": run.inflight,
        "ideal_s": round(run.ideal, 2),
        "workers": run.workers,
        "warmup_items": run.warmup_items,
        "webhooks": run.webhooks,
        "letzflow": engine,
        "baseline": baselines,
        "wall_over_baseline": round(engine["wall_s"] / baselines[0]["wall_s"], 3) if baselines else None,
    }
