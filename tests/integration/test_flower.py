"""Flower against a real worker: it sees the worker and letzflow's tasks, and the tasks carry ids only."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.fixtures_stack import FAST_SIM
from workers.stack import EmbeddedStack, ManagedProcess, child_env, free_port

pytestmark = pytest.mark.integration

AUTH = ("admin", "flower-test-secret")
PROMPT = "studio photo of a teal ceramic teapot, flower test marker"


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except requests.RequestException as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


@pytest.fixture(scope="module")
def stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs=FAST_SIM) as stack:
        stack.start_worker(name="flowerw", pool="threads", concurrency=4)
        yield stack


@pytest.fixture(scope="module")
def flower(stack: EmbeddedStack) -> Iterator[str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "workers.app",
        "flower",
        f"--port={port}",
        "--address=127.0.0.1",
        f"--basic-auth={AUTH[0]}:{AUTH[1]}",
    ]
    process = ManagedProcess(
        argv, name="flower", log_dir=stack.dir / "flower", env=child_env(stack.env), cwd=stack.dir
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.wait_ready(lambda: requests.get(f"{url}/healthcheck", timeout=1).text == "OK", timeout=60)
        yield url
    finally:
        process.stop()


def api(url: str, path: str, **params: Any) -> Any:
    response = requests.get(f"{url}{path}", params=params, auth=AUTH, timeout=10)
    response.raise_for_status()
    return response.json()


def test_flower_api_needs_the_login(flower: str) -> None:
    assert requests.get(f"{flower}/api/workers", timeout=10).status_code == 401
    assert requests.get(f"{flower}/api/workers", auth=("admin", "wrong"), timeout=10).status_code == 401


def test_flower_shows_the_worker_and_finished_tasks_with_ids_only(
    stack: EmbeddedStack, flower: str, tmp_path: Path
) -> None:
    node = stack.workers[0].nodename
    workers = wait_until(
        lambda: node in api(flower, "/api/workers", refresh=1) and api(flower, "/api/workers"),
        30,
        "the worker in /api/workers",
    )
    queues = {q["name"] for q in workers[node]["active_queues"]}
    assert queues == {"submit", "poll", "media", "batch"}
    wait_until(lambda: api(flower, "/api/workers", status=1).get(node) is True, 30, "the worker's heartbeats")
    worker_log = stack.workers[0].process
    assert worker_log is not None
    wait_until(
        lambda: "Events of group {task} enabled by remote" in worker_log.log_text(),
        30,
        "Flower to switch the worker's task events on",
    )

    spec = tmp_path / "tiny.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "flower-tiny",
                # the upscale's copy is a task of its own (an image's is done by the look that saw it done)
                "steps": [
                    {"generate": {"width": 512, "height": 512, "quality": 1, "mode": "default"}},
                    {"upscale": {"strength": 1, "size": 2}},
                ],
                "items": [{"id": "teapot-1", "prompt": PROMPT}],
            }
        )
    )
    run = subprocess.run(
        [sys.executable, "-m", "workers.cli", "run", str(spec), "--wait"],
        env=child_env(stack.env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr

    def finished() -> dict[str, Any]:
        tasks: dict[str, Any] = api(flower, "/api/tasks")
        names = {t["name"] for t in tasks.values() if t["state"] == "SUCCESS"}
        wanted = {
            "letzflow.submit_step",
            "letzflow.poll_step",
            "letzflow.copy_outputs",
            "letzflow.finalize_batch",
        }
        return tasks if wanted <= names else {}

    tasks = wait_until(finished, 30, "submit, poll, copy and finalize tasks in /api/tasks")
    assert {t["worker"] for t in tasks.values()} == {node}
    dump = json.dumps(tasks)
    assert "sim-key" not in dump and PROMPT not in dump and "teapot" not in dump
    for task in tasks.values():
        args = ast.literal_eval(task["args"])
        kwargs = ast.literal_eval(task["kwargs"])
        assert isinstance(args, tuple | list) and isinstance(kwargs, dict), task
        values = [*args, *kwargs.values()]
        assert all(isinstance(v, int) or (isinstance(v, str) and len(v) <= 64) for v in values), task
