"""Capacity of the LetzAI simulator: API requests per second it sustains with keep-alive clients.

Starts ``python -m letzai.sim`` as a subprocess on a free loopback port, then runs client processes, each
with several threads holding their own keep-alive ``requests.Session``, doing what the engine does: mostly
polls of existing jobs, some creates, some list calls. Prints ONE JSON line::

    {"bench": "sim_capacity", "requests_per_s": ..., "requests": ..., "errors": ..., "p50_ms": ..., ...}

Usage: ``.venv/bin/python bench/bench_sim.py [--seconds 8] [--processes 2] [--threads 4]``
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": "Bearer bench-key"}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, deadline_s: float = 15.0) -> None:
    """Wait until the simulator answers ``/_sim/health``.

    Raises:
        RuntimeError: it did not come up in time.
    """
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if requests.get(f"{url}/_sim/health", timeout=1).ok:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError("simulator did not start")


def client_thread(url: str, stop_at: float, out: list[tuple[int, int, list[float]]]) -> None:
    """One keep-alive client: 85 % polls, 10 % creates, 5 % list calls until ``stop_at``."""
    session = requests.Session()
    session.headers.update(AUTH)
    rng = random.Random()
    ids: list[str] = []
    done = errors = 0
    latencies: list[float] = []
    while time.monotonic() < stop_at:
        roll = rng.random()
        started = time.perf_counter()
        try:
            if not ids or roll < 0.10:
                response = session.post(
                    f"{url}/images", json={"prompt": "bench", "width": 512, "height": 512}
                )
                if response.ok:
                    ids.append(response.json()["id"])
                    del ids[:-50]
            elif roll < 0.15:
                response = session.get(f"{url}/images", params={"limit": 10})
            else:
                response = session.get(f"{url}/images/{rng.choice(ids)}")
            errors += response.status_code >= 400
        except requests.RequestException:
            errors += 1
        latencies.append(time.perf_counter() - started)
        done += 1
    out.append((done, errors, latencies))


def client_process(url: str, threads: int, stop_at: float, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    """Run ``threads`` client threads and report ``(requests, errors, latencies)``."""
    out: list[tuple[int, int, list[float]]] = []
    workers = [threading.Thread(target=client_thread, args=(url, stop_at, out)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    latencies = [lat for _, _, lats in out for lat in lats]
    queue.put((sum(d for d, _, _ in out), sum(e for _, e, _ in out), latencies))


def main() -> int:
    """Run the benchmark and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "letzai.sim", "--port", str(port), "--latency-image", "1", "--seed", "1"]
    server = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, env={**os.environ})
    try:
        wait_ready(url)
        queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        stop_at = time.monotonic() + args.seconds
        procs = [
            mp.Process(target=client_process, args=(url, args.threads, stop_at, queue))
            for _ in range(args.processes)
        ]
        started = time.monotonic()
        for proc in procs:
            proc.start()
        results = [queue.get(timeout=args.seconds + 30) for _ in procs]
        for proc in procs:
            proc.join(timeout=10)
        elapsed = time.monotonic() - started
        counters = requests.get(f"{url}/_sim/counters", params={"by_job": "0"}, timeout=5).json()
    finally:
        server.terminate()
        server.wait(timeout=10)
    total = sum(r[0] for r in results)
    latencies = sorted(lat for r in results for lat in r[2])

    def pct(q: float) -> float:
        return (
            round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2) if latencies else 0.0
        )

    print(
        json.dumps(
            {
                "bench": "sim_capacity",
                "requests_per_s": round(total / elapsed, 1),
                "requests": total,
                "errors": sum(r[1] for r in results),
                "seconds": round(elapsed, 2),
                "clients": args.processes * args.threads,
                "p50_ms": pct(0.5),
                "p99_ms": pct(0.99),
                "server_requests": counters["requests"],
                "jobs_created": counters["jobs_created_total"],
                "load": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
