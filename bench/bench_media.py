"""Media copy: one large object through letzflow's copy path, against a plain boto3 ``upload_file``.

A local HTTP server (its own process) streams SIZE MB of deterministic bytes; a fresh process runs the copy
path exactly as a worker does (``letzai.media.open_media`` → ``S3MediaStore.put_stream``: multipart upload,
sha256, server-side copy to attach it, size check) into moto's S3 server, while this process samples its RSS.
Then another fresh process uploads the same bytes from a local file with ``boto3 upload_file`` (defaults).
Prints ONE JSON line: RSS growth of the copying process (target < 64 MB), seconds and MB/s of both.

Usage: ``.venv/bin/python -m bench.bench_media [--size-mb 1024]``
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from bench.harness import ROOT, emit
from workers.stack import S3Server, child_env, free_port

BLOCK = 1024 * 1024
RSS_LIMIT_MB = 64


def block(index: int) -> bytes:
    """The ``index``-th MB of the deterministic stream."""
    seed = hashlib.sha256(index.to_bytes(8, "big")).digest()
    return (seed * (BLOCK // len(seed) + 1))[:BLOCK]


def serve(port: int, size_mb: int) -> None:
    """Serve ``size_mb`` MB of :func:`block` data at any path (runs until killed)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size_mb * BLOCK))
            self.end_headers()
            for n in range(size_mb):
                self.wfile.write(block(n))

        def log_message(self, *args: Any) -> None:
            pass

    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def child_copy(url: str, endpoint: str, bucket: str, ready: str) -> None:
    """The worker's copy path, in this (fresh) process; prints the stored object as JSON."""
    from letzai.media import open_media
    from storage.media import S3MediaStore, make_s3_client

    store = S3MediaStore(make_s3_client(endpoint, read_timeout=600), bucket)
    Path(ready).write_text(str(psutil.Process().memory_info().rss))
    started = time.monotonic()
    media = open_media(url)
    stored = store.put_stream(
        "bench/large.bin", media.chunks(), media.content_type, expected_size=media.length
    )
    print(json.dumps({"seconds": time.monotonic() - started, "size": stored.size, "sha256": stored.sha256}))


def child_upload_file(path: str, endpoint: str, bucket: str, ready: str) -> None:
    """A plain ``boto3 upload_file`` of ``path`` (boto3's default transfer settings)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    Path(ready).write_text(str(psutil.Process().memory_info().rss))
    started = time.monotonic()
    client.upload_file(path, bucket, "bench/large-upload-file.bin")
    print(json.dumps({"seconds": time.monotonic() - started}))


def run_child(args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any]:
    """Run ``bench.bench_media --child ...`` and sample its RSS; its answer with the RSS figures."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready"
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_media", "--child", *args, str(ready)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ps = psutil.Process(proc.pid)
        base = peak = 0
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                rss = ps.memory_info().rss
            except psutil.NoSuchProcess:
                break
            if not base and ready.exists() and ready.read_text():
                base = rss
            peak = max(peak, rss)
            time.sleep(0.02)
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed: {err[-2000:]}")
    result = json.loads(out.strip().splitlines()[-1])
    result.update(
        rss_base_mb=round(base / 2**20, 1),
        rss_peak_mb=round(peak / 2**20, 1),
        rss_growth_mb=round((peak - base) / 2**20, 1),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        mode, *rest = argv[1:]
        (child_copy if mode == "copy" else child_upload_file)(*rest)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    port = free_port()
    server = threading.Thread(target=serve, args=(port, args.size_mb), daemon=True)
    server.start()
    env = child_env(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    with S3Server() as s3, tempfile.TemporaryDirectory(prefix="letzflow-media-") as tmp:
        s3.create_bucket("bench")
        url = f"http://127.0.0.1:{port}/large.bin"
        copy = run_child(["copy", url, s3.url, "bench"], env, args.timeout)
        path = Path(tmp) / "large.bin"
        with path.open("wb") as fh:
            for n in range(args.size_mb):
                fh.write(block(n))
        upload = run_child(["upload_file", str(path), s3.url, "bench"], env, args.timeout)
    expected = hashlib.sha256()
    for n in range(args.size_mb):
        expected.update(block(n))
    size = args.size_mb * BLOCK
    emit(
        "media_copy",
        size_mb=args.size_mb,
        sha256_ok=copy["sha256"] == expected.hexdigest() and copy["size"] == size,
        letzflow={
            "seconds": round(copy["seconds"], 2),
            "mb_per_s": round(args.size_mb / copy["seconds"], 1),
            "rss_growth_mb": copy["rss_growth_mb"],
            "rss_peak_mb": copy["rss_peak_mb"],
        },
        upload_file={
            "seconds": round(upload["seconds"], 2),
            "mb_per_s": round(args.size_mb / upload["seconds"], 1),
            "rss_growth_mb": upload["rss_growth_mb"],
            "rss_peak_mb": upload["rss_peak_mb"],
        },
        throughput_ratio=round(upload["seconds"] / copy["seconds"], 3),
        rss_within_limit=copy["rss_growth_mb"] < RSS_LIMIT_MB,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
