"""The simulator varies between the disputed answer shapes, deterministically from its seed, and runs as
``python -m letzai.sim``."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from letzai.sim.server import SimConfig, start_simulator

pytestmark = pytest.mark.integration

AUTH = {"Authorization": "Bearer k"}


def video_shape(obj: dict[str, object]) -> str:
    if isinstance(obj.get("videoPaths"), dict):
        return "paths"
    versions = obj.get("videoVersions")
    return "versions_object" if isinstance(versions, dict) else "versions_array"


def run_jobs(seed: int, count: int = 12) -> tuple[set[str], set[str], set[int], list[str]]:
    """Working words of images, video URL shapes and create statuses seen over ``count`` jobs each."""
    config = SimConfig(seed=seed, latency_image=3.0, latency_video=0.05, jitter=0.0)
    with start_simulator(config) as sim:
        session = requests.Session()
        session.headers.update(AUTH)
        words, shapes, codes, sequence = set(), set(), set(), []
        image_ids, video_ids = [], []
        for _ in range(count):
            image = session.post(f"{sim.url}/images", json={"prompt": "v"}, timeout=5)
            video = session.post(f"{sim.url}/videos", json={"prompt": "v"}, timeout=5)
            codes |= {image.status_code, video.status_code}
            image_ids.append(image.json()["id"])
            video_ids.append(video.json()["id"])
        time.sleep(0.45)
        for image_id in image_ids:
            word = session.get(f"{sim.url}/images/{image_id}", timeout=5).json()["status"]
            words.add(word)
            sequence.append(word)
        for video_id in video_ids:
            obj = session.get(f"{sim.url}/videos/{video_id}", timeout=5).json()
            assert obj["status"] == "ready"
            shapes.add(video_shape(obj))
            sequence.append(video_shape(obj))
    return words, shapes, codes, sequence


def test_seeded_variants_cover_every_shape_and_replay() -> None:
    words, shapes, codes, sequence = run_jobs(seed=3)
    assert words == {"generating", "in progress"}
    assert shapes == {"paths", "versions_object", "versions_array"}
    assert codes == {200, 201}
    assert run_jobs(seed=3)[3] == sequence


def test_list_shapes_bare_arrays_and_edit_envelope() -> None:
    with start_simulator(SimConfig(seed=1)) as sim:
        assert isinstance(requests.get(f"{sim.url}/images", headers=AUTH, timeout=5).json(), list)
        assert isinstance(requests.get(f"{sim.url}/videos", headers=AUTH, timeout=5).json(), list)
        edits = requests.get(f"{sim.url}/image-edits", headers=AUTH, timeout=5).json()
        assert edits["data"] == [] and edits["pagination"]["total"] == 0
        shapes = set()
        for _ in range(10):
            models = requests.get(f"{sim.url}/models", headers=AUTH, timeout=5)
            shapes.add("headers" if "X-Total-Count" in models.headers else "envelope")
        assert shapes == {"headers", "envelope"}
        assert sim.counters()["list_calls_total"] == 13


def test_python_dash_m_serves_on_the_given_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "letzai.sim", "--port", str(port), "--latency-image", "0.05"]
    proc = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert f"http://127.0.0.1:{port}" in proc.stdout.readline()
        url = f"http://127.0.0.1:{port}"
        created = requests.post(f"{url}/images", json={"prompt": "a cat"}, headers=AUTH, timeout=5).json()
        time.sleep(0.12)
        ready = requests.get(f"{url}/images/{created['id']}", headers=AUTH, timeout=5).json()
        assert ready["status"] == "ready"
        assert (
            requests.get(ready["imageVersions"]["original"], timeout=5).headers["Content-Type"] == "image/png"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
