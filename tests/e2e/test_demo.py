"""``letzflow demo`` as a user runs it: the whole catalog on an embedded stack, and nothing left running."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from letzflow.spec import load_spec
from workers.demo_stack import ApiStack
from workers.stack import REPO_ROOT

CATALOG = REPO_ROOT / "examples" / "catalog.yaml"
STACK_LINE = re.compile(
    r"local stack up in [\d.]+s: redis (\S+), S3 (\S+), simulator (\S+), .*; logs in (\S+)"
)


@dataclass
class DemoRun:
    """A ``letzflow demo`` child process, its output, and every process seen below it."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    descendants: dict[int, float] = field(default_factory=dict)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def watch(self) -> None:
        """Record every descendant (pid, start time) while the demo runs."""
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.descendants.setdefault(child.pid, child.create_time())
        except psutil.Error:
            pass

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.watch()
            match = re.search(pattern, self.output)
            if match:
                return match
            assert self.process.poll() is None, f"demo exited early:\n{self.output}\n{''.join(self.errors)}"
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} after {timeout}s:\n{self.output}")

    def finish(self, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            assert time.monotonic() < deadline, f"demo still running after {timeout}s:\n{self.output}"
            self.watch()
            time.sleep(0.2)
        return self.process.returncode


def start_demo(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> DemoRun:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LETZAI_", "LETZFLOW_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "workers.cli", "demo", "--out", str(tmp_path / "out"), *args],
        cwd=tmp_path,
        env={**base, "PYTHONPATH": str(REPO_ROOT), "COLUMNS": "200", **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as in a terminal: a test run started in the background by a non-interactive shell inherits
        # SIGINT ignored, and Python keeps it ignored, so Ctrl-C could not be tested
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    run = DemoRun(process)
    for stream, sink in ((process.stdout, run.lines), (process.stderr, run.errors)):
        threading.Thread(
            target=lambda s=stream, k=sink: k.extend(line.rstrip("\n") for line in s), daemon=True
        ).start()
    return run


def alive(pid: int, created: float) -> bool:
    """The same process (pid and start time) still exists and is not a zombie."""
    try:
        process = psutil.Process(pid)
        return process.create_time() == created and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_nothing_left(run: DemoRun, ports: list[str], stack_dir: str, timeout: float = 10) -> None:
    """No descendant of the demo is alive, and no process mentions its ports or its temp dir."""
    deadline = time.monotonic() + timeout
    while True:
        left = [pid for pid, created in run.descendants.items() if alive(pid, created)]
        mentions = []
        for process in psutil.process_iter(["pid", "cmdline", "status"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if process.info["status"] != psutil.STATUS_ZOMBIE and (
                stack_dir in cmdline or any(re.search(rf"\b{port}\b", cmdline) for port in ports)
            ):
                mentions.append((process.info["pid"], cmdline))
        if not left and not mentions:
            break
        assert time.monotonic() < deadline, f"left running: {left} {mentions}"
        time.sleep(0.2)
    assert not Path(stack_dir).exists(), "the demo's temp dir was not removed"


def stack_of(run: DemoRun) -> tuple[list[str], str]:
    """The ports of the demo's redis, S3 and simulator, and its temp dir, from the demo's first line."""
    match = run.wait_for(STACK_LINE.pattern, 60)
    ports = [url.rstrip("/").rsplit(":", 1)[1].split("/")[0] for url in match.groups()[:3]]
    return ports, match.group(4)


@pytest.mark.integration
def test_demo_runs_the_catalog_through_four_steps_and_leaves_nothing_running(tmp_path: Path) -> None:
    began = time.monotonic()
    run = start_demo(tmp_path)
    ports, stack_dir = stack_of(run)
    assert run.finish(timeout=150) == 0, run.output + "\n".join(run.errors)
    assert time.monotonic() - began < 120, "the demo must finish in under two minutes"
    assert len(run.descendants) >= 4, "redis, S3, simulator and a worker ran as children"
    assert_nothing_left(run, ports, stack_dir)

    gallery = Path(re.search(r"^gallery:\s+(\S+)$", run.output, re.M).group(1))  # type: ignore[union-attr]
    manifest_path = Path(re.search(r"^manifest:\s+(\S+)$", run.output, re.M).group(1))  # type: ignore[union-attr]
    assert gallery.is_absolute() and gallery.is_file() and gallery.stat().st_size > 0
    assert gallery.parent == (tmp_path / "out").resolve()
    manifest = json.loads(manifest_path.read_text())
    items = manifest["items"]
    assert len(items) == load_spec(CATALOG).item_count >= 20
    kinds = ["generate", "skin_fix", "upscale", "animate"]
    media = tmp_path / "out" / "media"
    for item in items:
        assert item["status"] == "done", item
        assert [o["kind"] for o in sorted(item["outputs"], key=lambda o: o["step"])] == kinds, item
        for output in item["outputs"]:
            data = (media / output["key"]).read_bytes()
            assert len(data) == output["size"] and hashlib.sha256(data).hexdigest() == output["sha256"]
        assert item["outputs"][-1]["content_type"] == "video/mp4"
    assert re.search(rf"{len(items)} of {len(items)} items done", run.output)
    assert "s3://letzflow/" in run.output
    html = gallery.read_text()
    assert all(f'"media/{o["key"]}"' in html for item in items for o in item["outputs"])


@pytest.mark.integration
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_demo_stops_every_child_process(tmp_path: Path, signum: int, code: int) -> None:
    run = start_demo(tmp_path, "--items", "24")  # enough work to be mid-run whatever the machine's speed
    ports, stack_dir = stack_of(run)
    run.wait_for(r"batch \w+ \(\S+\): 24 items x 4 steps", 60)
    time.sleep(0.5)
    run.watch()
    assert len(run.descendants) >= 4
    run.process.send_signal(signum)
    assert run.finish(timeout=60) == code, run.output + "\n".join(run.errors)
    assert "items done in" not in run.output  # the signal came mid-batch
    assert_nothing_left(run, ports, stack_dir)
    assert "every local service was stopped" in "\n".join(run.errors)


def test_real_mode_without_a_key_names_the_variable(tmp_path: Path) -> None:
    run = start_demo(tmp_path, "--real")
    assert run.finish(timeout=60) == 2
    time.sleep(0.2)
    assert "LETZAI_API_KEY" in "\n".join(run.errors)
    assert not run.descendants and not (tmp_path / "out").exists()


def test_real_mode_without_a_terminal_needs_explicit_consent(tmp_path: Path) -> None:
    run = start_demo(tmp_path, "--real", env={"LETZAI_API_KEY": "not-a-real-key"})
    assert run.finish(timeout=60) == 2
    time.sleep(0.2)
    assert "credits" in run.output and "LETZFLOW_DEMO_YES=1" in "\n".join(run.errors)
    assert not run.descendants


@pytest.mark.integration
def test_the_real_api_stack_runs_no_simulator_and_passes_the_key() -> None:
    api = {"api_key": "real-key", "base_url": "https://api.letz.ai", "organization_id": "org-1"}
    with ApiStack(api) as stack:
        assert stack.sim is None and len(stack.processes()) == 2
        env = stack.env
        assert env["LETZAI_BASE_URL"] == "https://api.letz.ai" and env["LETZAI_SIMULATOR"] == "0"
        assert env["LETZAI_API_KEY"] == "real-key" and env["LETZAI_ORGANIZATION_ID"] == "org-1"
        assert stack.redis is not None and stack.redis.is_ready()
        pids = [p.pid for p in stack.processes()]
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in pids
    )


@pytest.mark.integration
def test_demo_with_webhooks_sees_jobs_by_their_webhooks_and_leaves_nothing_running(tmp_path: Path) -> None:
    run = start_demo(tmp_path, "--webhooks", "--items", "6")
    ports, stack_dir = stack_of(run)
    assert run.finish(timeout=150) == 0, run.output + "\n".join(run.errors)
    receiver = re.search(r"webhook receiver http://127\.0\.0\.1:(\d+)/letzflow", run.output)
    assert receiver, run.output
    assert "6 of 6 items done" in run.output
    woke = re.search(
        r"webhooks: (\d+) calls woke a poll, (\d+) came after .*, (\d+) carried an unknown", run.output
    )
    assert woke, run.output
    accepted, late, unknown = (int(g) for g in woke.groups())
    # every job's webhook came (the first looks of a cold start may see a short job done before its call)
    assert accepted + late >= 6 * 4 and accepted >= late and unknown == 0, run.output
    assert len(run.descendants) >= 5, "redis, S3, simulator, receiver and a worker ran as children"
    assert_nothing_left(run, [*ports, receiver.group(1)], stack_dir)
