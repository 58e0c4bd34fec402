"""The baseline: the script a user writes instead of a queue.

A ``ThreadPoolExecutor`` with C threads; each thread takes an item and, for every step, POSTs the job with
``requests``, polls it with ``time.sleep`` at a fixed interval until it is ready, downloads the media and
uploads it with boto3. No ledger, no retries, no exactly-once: the frontier letzflow is measured against.

Run alone (prints one JSON line)::

    .venv/bin/python bench/baseline_script.py --base-url http://127.0.0.1:PORT \\
        --s3-endpoint http://127.0.0.1:PORT \\
        --items 300 --threads 50 --interval 2
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import requests

SUCCESS = {"ready", "saved"}
FAILURE = {"failed", "interrupted", "not_allowed", "hidden"}
#: (endpoint, body) per step kind; later steps get the previous step's media URL as ``imageUrl``.
STEPS: dict[str, tuple[str, dict[str, Any]]] = {
    "generate": ("images", {"width": 520, "height": 520, "hasWatermark": False}),
    "skin_fix": ("image-edits", {"mode": "skin", "settings": {"intensity": 3}}),
    "upscale": ("upscale", {"strength": 1, "size": 4}),
    "animate": ("videos", {"prompt": "slow orbit", "settings": {"mode": "default", "duration": 4}}),
}


@dataclass
class BaselineResult:
    """What a baseline run measured."""

    wall: float
    items: int
    done: int
    failed: int
    posts: int = 0
    polls: int = 0
    errors: list[str] = field(default_factory=list)


def _url(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("url")
    return str(value) if value else None


def media_url(kind: str, job: dict[str, Any]) -> str | None:
    """The result URL of a finished job, wherever this kind puts it (a string or an object with ``url``)."""
    if kind == "image-edits":
        gen = job.get("generatedImageCompletion") or {}
        return _url((gen.get("imageVersions") or {}).get("original"))
    if kind == "videos":
        versions = job.get("videoVersions")
        if isinstance(versions, dict) and versions.get("original"):
            return _url(versions["original"])
        paths = job.get("videoPaths") or {}
        if paths:
            return _url(paths.get("mp4") or next(iter(paths.values())))
        if isinstance(versions, list) and versions:
            return _url(versions[0])
        return None
    return _url((job.get("imageVersions") or {}).get("original"))


class Baseline:
    """The thread-pool script, parameterised so the bench can run it on the same simulator."""

    def __init__(
        self, base_url: str, s3_endpoint: str, bucket: str, interval: float, api_key: str = "sim-key"
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.interval = interval
        self.bucket = bucket
        self.s3 = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )
        self.local = threading.local()
        self.api_key = api_key
        self.lock = threading.Lock()
        self.posts = 0
        self.polls = 0

    def session(self) -> requests.Session:
        if not hasattr(self.local, "session"):
            self.local.session = requests.Session()
            self.local.session.headers["Authorization"] = f"Bearer {self.api_key}"
        return self.local.session  # type: ignore[no-any-return]

    def run_step(self, item_id: str, index: int, step: str, prompt: str, source: str | None) -> str:
        """POST, sleep-poll until ready, copy to S3; the media URL."""
        endpoint, body = STEPS[step]
        body = {**body, "prompt": body.get("prompt", prompt)}
        if source is not None:
            body["imageUrl"] = source
        http = self.session()
        created = http.post(f"{self.base_url}/{endpoint}", json=body, timeout=30)
        created.raise_for_status()
        with self.lock:
            self.posts += 1
        job_id = created.json()["id"]
        while True:
            time.sleep(self.interval)
            job = http.get(f"{self.base_url}/{endpoint}/{job_id}", timeout=30).json()
            with self.lock:
                self.polls += 1
            status = job.get("status")
            if status in FAILURE:
                raise RuntimeError(f"{step} {status}")
            url = media_url(endpoint, job) if status in SUCCESS else None
            if url:
                break
        data = requests.get(url, timeout=60).content
        self.s3.upload_fileobj(io.BytesIO(data), self.bucket, f"baseline/{item_id}/{index:02d}-{step}")
        return url

    def run_item(self, item_id: str, steps: Sequence[str]) -> None:
        source = None
        for index, step in enumerate(steps, start=1):
            source = self.run_step(item_id, index, step, f"baseline item {item_id}", source)

    def run(self, items: int, threads: int, steps: Sequence[str]) -> BaselineResult:
        """Run ``items`` items through ``steps`` on ``threads`` threads; what happened."""
        started = time.monotonic()
        done = failed = 0
        errors: list[str] = []
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = [pool.submit(self.run_item, f"b{n:06d}", steps) for n in range(items)]
            for future in futures:
                try:
                    future.result()
                    done += 1
                except Exception as exc:  # the script a user writes logs and goes on
                    failed += 1
                    if len(errors) < 5:
                        errors.append(repr(exc)[:200])
        return BaselineResult(time.monotonic() - started, items, done, failed, self.posts, self.polls, errors)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--s3-endpoint", required=True)
    parser.add_argument("--bucket", default="letzflow")
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--threads", type=int, default=50)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--steps", default="generate")
    args = parser.parse_args()
    result = Baseline(args.base_url, args.s3_endpoint, args.bucket, args.interval).run(
        args.items, args.threads, args.steps.split(",")
    )
    print(json.dumps({"bench": "baseline", **result.__dict__}))
    return 0 if result.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
