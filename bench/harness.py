"""Shared plumbing of the benchmarks: machine facts, the ideal, process-tree CPU, Redis and simulator figures.

Every benchmark prints exactly one JSON line built with :func:`emit`; everything runs on 127.0.0.1.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def ideal_seconds(items: int, inflight: int, step_latencies: Iterable[float]) -> float:
    """What the API itself allows: ``ceil(N / C) * sum of step latencies`` (S · L for equal steps)."""
    return math.ceil(items / inflight) * sum(step_latencies)


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU seconds of the processes and their live descendants (reaped children included)."""
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in procs:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.NoSuchProcess:
                continue
    return total


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its live descendants."""
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


def redis_commands(client: redis.Redis) -> int:
    """Commands the server has executed so far (INFO commandstats, summed)."""
    return sum(redis_command_counts(client).values())


def redis_command_counts(client: redis.Redis) -> dict[str, int]:
    """Commands the server has executed so far, per command (INFO commandstats)."""
    stats = client.info("commandstats")
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items() if isinstance(v, dict)}


def redis_peak_memory(client: redis.Redis) -> int:
    """``used_memory_peak`` in bytes."""
    return int(client.info("memory")["used_memory_peak"])


def sim_api_counts(counters: dict[str, Any]) -> tuple[int, int]:
    """``(POSTs attempted, polls)`` from a ``/_sim/counters`` snapshot."""
    posts = sum(int(p["attempted"]) for p in counters["posts"].values())
    return posts, int(counters["polls"]["total"])


def task_totals(env: dict[str, str]) -> dict[str, int]:
    """Task executions per task name so far, summed over the running workers (``celery inspect stats``)."""
    import os
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "workers.app", "inspect", "stats", "--json", "--timeout", "5"],
        env={**os.environ, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    totals: dict[str, int] = {}
    try:
        replies = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return totals
    for reply in replies.values():
        for name, count in reply.get("total", {}).items():
            short = name.rsplit(".", 1)[-1]
            totals[short] = totals.get(short, 0) + int(count)
    return totals


def emit(bench: str, **fields: Any) -> dict[str, Any]:
    """Print the benchmark's one JSON line (with load and a timestamp) and return it."""
    record = {"bench": bench, **fields, "load": load(), "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(json.dumps(record), flush=True)
    return record


def worker_env(inflight: int, **extra: str) -> dict[str, str]:
    """Worker variables for a bench: the in-flight cap, a rate limit that never binds, a slow reconciler."""
    return {
        "LETZAI_MAX_INFLIGHT": str(inflight),
        "LETZAI_MAX_RPS": "2000",
        "LETZFLOW_RECONCILE_EVERY": "30",
        **extra,
    }
