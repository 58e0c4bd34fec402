"""The simulator POSTs a job's webhook when the job ends, with the fault knobs of letzai/sim/webhooks.py.

A real HTTP receiver (stdlib, port 0) records every POST; the simulator runs in-process with 0.2 s jobs.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from letzai.sim.config import config_from_args
from letzai.sim.server import RunningSim, SimConfig, build_parser, start_simulator

pytestmark = pytest.mark.integration

FAST: dict[str, Any] = {
    "latency_image": 0.2,
    "latency_image_edit": 0.2,
    "latency_upscale": 0.2,
    "latency_video": 0.2,
    "latency_model": 0.2,
    "jitter": 0.0,
}
CALM: dict[str, Any] = {
    **FAST,
    "fail_rate": 0.0,
    "never_finish_rate": 0.0,
    "thin_get_fields": [],
    "webhook_lost_rate": 0.0,
    "webhook_delay": 0.0,
    "webhook_delay_jitter": 0.0,
    "webhook_duplicate_rate": 0.0,
    "webhook_body": "mixed",
    "webhook_wrong_token_rate": 0.0,
}
TERMINAL = ("ready", "available", "failed", "interrupted")


@dataclass(frozen=True)
class Hit:
    """One POST the receiver got: when (``time.monotonic()``), where, and the decoded body."""

    at: float
    path: str
    body: Any


class Receiver:
    """A real webhook receiver recording every POST; paths under ``/fail/`` answer 500, under ``/slow/``
    answer after 1 s."""

    def __init__(self) -> None:
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.monotonic()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.hits.append(Hit(at, self.path, body))
                if self.path.startswith("/slow/"):
                    time.sleep(1.0)
                self.send_response(500 if self.path.startswith("/fail/") else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, prefix: str = "hooks") -> str:
        """A fresh ``<base>/<prefix>/<token>`` (a 32-hex-digit token, as a receiver would issue)."""
        return f"{self.base}/{prefix}/{secrets.token_hex(16)}"

    def got(self) -> list[Hit]:
        with self.lock:
            return list(self.hits)

    def wait(self, count: int, timeout: float = 3.0) -> list[Hit]:
        """The hits once there are at least ``count`` (or at ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.got()) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.got()

    def clear(self) -> None:
        with self.lock:
            self.hits.clear()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    yield rx
    rx.server.shutdown()
    rx.server.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[RunningSim]:
    sim = start_simulator(SimConfig(seed=23, **FAST))
    yield sim
    sim.stop()


@pytest.fixture
def sim(server: RunningSim, receiver: Receiver) -> RunningSim:
    server.reset()
    server.configure(**CALM)
    receiver.clear()
    return server


@pytest.fixture
def api() -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = "Bearer test-key"
    return session


def create(api: requests.Session, sim: RunningSim, path: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = api.post(f"{sim.url}{path}", json=body, timeout=5)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()  # type: ignore[no-any-return]


def image(api: requests.Session, sim: RunningSim, hook: str | None, prompt: str = "a cat") -> str:
    body = {"prompt": prompt} | ({"webhookUrl": hook} if hook else {})
    return str(create(api, sim, "/images", body)["id"])


def counts(sim: RunningSim) -> dict[str, int]:
    return {k: v for k, v in sim.counters(by_job=False).items() if k.startswith("webhooks_")}


def wait_counter(sim: RunningSim, name: str, value: int, timeout: float = 3.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while counts(sim)[name] < value and time.monotonic() < deadline:
        time.sleep(0.01)
    return counts(sim)


def finish_of(sim: RunningSim, job_id: str) -> float:
    with sim.state.lock:
        finish = sim.state.jobs[job_id].finish_time
    assert finish is not None
    return finish


def object_of(hit: Hit) -> dict[str, Any]:
    return hit.body["data"] if "event" in hit.body else hit.body  # type: ignore[no-any-return]


@pytest.mark.parametrize("shape", ["object", "event"])
def test_every_kind_is_delivered_once_to_its_own_url_with_its_get_object(
    sim: RunningSim, receiver: Receiver, api: requests.Session, shape: str
) -> None:
    sim.configure(webhook_body=shape)
    hooks = {name: receiver.url() for name in ("image", "image_edit", "upscale", "video", "model")}
    source = image(api, sim, hooks["image"])
    receiver.wait(1)
    jobs = {
        "image": ("/images", source),
        "image_edit": ("/image-edits", {"mode": "skin", "originalImageCompletionId": source}),
        "upscale": ("/upscale", {"imageId": source, "size": 2}),
        "video": ("/videos", {"prompt": "orbit", "originalImageCompletionId": source}),
        "model": (
            "/models",
            {"name": "wh.model", "class": "object", "trainingDataUrls": ["https://x.test/1"]},
        ),
    }
    ids = {"image": source}
    for kind, (path, body) in jobs.items():
        if kind != "image":
            assert isinstance(body, dict)
            ids[kind] = create(api, sim, path, {**body, "webhookUrl": hooks[kind]})["id"]
    hits = receiver.wait(5)
    time.sleep(0.3)
    assert len(receiver.got()) == 5
    by_path = {hit.path: hit for hit in hits}
    assert set(by_path) == {urlsplit(url).path for url in hooks.values()}
    for kind, job_id in ids.items():
        hit = by_path[urlsplit(hooks[kind]).path]
        obj = object_of(hit)
        assert obj["id"] == job_id and obj["status"] in TERMINAL
        assert ("event" in hit.body) is (shape == "event")
        if shape == "event":
            assert hit.body == {"event": f"{kind}.{obj['status']}", "data": obj}
        assert obj == api.get(f"{sim.url}{jobs[kind][0]}/{job_id}", timeout=5).json()
        assert obj.get("previewImage") is None
    assert counts(sim) | {"webhooks_pending": 0} == {
        "webhooks_sent": 5,
        "webhooks_delivered": 5,
        "webhooks_failed": 0,
        "webhooks_lost": 0,
        "webhooks_duplicated": 0,
        "webhooks_wrong_token": 0,
        "webhooks_pending": 0,
    }
    rows = requests.get(f"{sim.url}/_sim/webhooks", timeout=5).json()
    assert {row["job_id"] for row in rows} == set(ids.values())
    assert all(row["url_ok"] and row["code"] == 200 and row["shape"] == shape for row in rows)


def test_mixed_bodies_take_both_shapes(sim: RunningSim, receiver: Receiver, api: requests.Session) -> None:
    for n in range(12):
        image(api, sim, receiver.url(), f"job {n}")
    hits = receiver.wait(12)
    assert len(hits) == 12
    assert {"event" in hit.body for hit in hits} == {True, False}
    assert {row["shape"] for row in sim.webhooks()} == {"object", "event"}


def test_a_job_without_webhook_url_is_not_delivered(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    silent = image(api, sim, None, "no hook")
    hooked = image(api, sim, receiver.url(), "hook")
    receiver.wait(1)
    time.sleep(0.3)
    assert [object_of(hit)["id"] for hit in receiver.got()] == [hooked]
    assert [row["job_id"] for row in sim.webhooks()] == [hooked]
    assert silent not in {row["job_id"] for row in sim.webhooks()}


def test_lost_rate_one_delivers_nothing_and_counts_lost(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    sim.configure(webhook_lost_rate=1.0)
    ids = [image(api, sim, receiver.url(), f"lost {n}") for n in range(3)]
    assert wait_counter(sim, "webhooks_lost", 3)["webhooks_lost"] == 3
    time.sleep(0.2)
    assert receiver.got() == []
    assert counts(sim)["webhooks_sent"] == 0
    rows = sim.webhooks()
    assert sorted(row["job_id"] for row in rows) == sorted(ids)
    assert all(row["lost"] and row["code"] is None and row["status"] == "ready" for row in rows)


def test_duplicate_rate_one_delivers_the_same_body_twice(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    sim.configure(webhook_duplicate_rate=1.0)
    hooks = [receiver.url(), receiver.url()]
    for hook in hooks:
        image(api, sim, hook)
    hits = receiver.wait(4)
    time.sleep(0.3)
    assert len(receiver.got()) == 4
    for hook in hooks:
        first, second = [hit for hit in hits if hit.path == urlsplit(hook).path]
        assert first.body == second.body
        assert second.at - first.at >= 0.1
    assert counts(sim)["webhooks_sent"] == 4 and counts(sim)["webhooks_duplicated"] == 2
    assert sorted(row["copy"] for row in sim.webhooks()) == [1, 1, 2, 2]


@pytest.mark.parametrize("token", ["0123456789abcdef0123456789abcdef", "Tok_en-9"])
def test_wrong_token_changes_only_the_last_segment(
    sim: RunningSim, receiver: Receiver, api: requests.Session, token: str
) -> None:
    sim.configure(webhook_wrong_token_rate=1.0)
    hook = f"{receiver.base}/hooks/{token}"
    job_id = image(api, sim, hook)
    [hit] = receiver.wait(1)
    time.sleep(0.2)
    assert len(receiver.got()) == 1
    head, _, sent_token = hit.path.rpartition("/")
    assert head == "/hooks" and len(sent_token) == len(token) and sent_token != token
    if token.isalnum() and token.islower():
        assert set(sent_token) <= set("0123456789abcdef")
    assert object_of(hit)["id"] == job_id
    assert counts(sim)["webhooks_wrong_token"] == 1
    [row] = sim.webhooks()
    assert row["url_ok"] is False and row["url"].endswith(sent_token)


def test_delay_knobs_hold_the_delivery_back(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    sim.configure(webhook_delay=0.4, webhook_delay_jitter=0.2)
    ids = [image(api, sim, receiver.url(), f"late {n}") for n in range(3)]
    hits = receiver.wait(3)
    assert len(hits) == 3
    for hit in hits:
        late = hit.at - finish_of(sim, object_of(hit)["id"])
        assert 0.4 <= late < 1.5
    assert {object_of(hit)["id"] for hit in hits} == set(ids)


def test_a_failed_job_is_delivered_with_its_failure(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    sim.configure(fail_rate=1.0, webhook_body="event")
    job_id = image(api, sim, receiver.url())
    [hit] = receiver.wait(1)
    assert hit.body["event"] == "image.failed"
    assert hit.body["data"]["id"] == job_id and hit.body["data"]["status"] == "failed"
    assert hit.body["data"]["statusDetail"]


def test_an_interrupted_image_is_delivered_once_when_interrupted(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    sim.configure(latency_image=0.6)
    hooks = [receiver.url(), receiver.url()]
    finishing = image(api, sim, hooks[0], "would finish")
    sim.configure(never_finish_rate=1.0)
    stuck = image(api, sim, hooks[1], "never finishes")
    time.sleep(0.1)
    for job_id in (finishing, stuck):
        assert api.put(f"{sim.url}/images/{job_id}/interruption", timeout=5).status_code == 204
    hits = receiver.wait(2)
    assert {(object_of(hit)["id"], object_of(hit)["status"]) for hit in hits} == {
        (finishing, "interrupted"),
        (stuck, "interrupted"),
    }
    assert all(hit.at < finish_of(sim, finishing) for hit in hits)
    time.sleep(0.8)
    assert len(receiver.got()) == 2 and counts(sim)["webhooks_sent"] == 2


def test_a_job_that_never_finishes_is_never_delivered(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    sim.configure(never_finish_rate=1.0)
    image(api, sim, receiver.url())
    assert counts(sim)["webhooks_pending"] == 0
    time.sleep(0.4)
    assert receiver.got() == [] and counts(sim)["webhooks_sent"] == 0


def test_thin_get_fields_shape_the_body_as_they_shape_get(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    sim.configure(thin_get_fields=["prompt", "createdAt"], thin_rate=1.0, webhook_body="object")
    job_id = image(api, sim, receiver.url())
    [hit] = receiver.wait(1)
    assert "prompt" not in hit.body and "createdAt" not in hit.body
    assert hit.body == api.get(f"{sim.url}/images/{job_id}", timeout=5).json()


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks/{secrets.token_hex(16)}"


def test_dead_or_failing_receivers_are_counted_failed_and_the_simulator_keeps_serving(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    dead = image(api, sim, _dead_url(), "dead")
    failing = image(api, sim, receiver.url("fail"), "500")
    fine = image(api, sim, receiver.url(), "fine")
    assert wait_counter(sim, "webhooks_failed", 2)["webhooks_failed"] == 2
    assert wait_counter(sim, "webhooks_delivered", 1)["webhooks_delivered"] == 1
    rows = {row["job_id"]: row for row in sim.webhooks()}
    assert rows[dead]["code"] is None and rows[dead]["error"]
    assert rows[failing]["code"] == 500 and rows[failing]["error"] == "HTTP 500"
    assert rows[fine]["code"] == 200 and rows[fine]["error"] is None
    assert api.get(f"{sim.url}/images/{dead}", timeout=5).json()["status"] == "ready"
    assert requests.get(f"{sim.url}/_sim/health", timeout=5).ok


def test_a_slow_receiver_does_not_hold_up_the_others(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    image(api, sim, receiver.url("slow"), "slow")
    ids = [image(api, sim, receiver.url(), f"quick {n}") for n in range(3)]
    hits = receiver.wait(4)
    quick = [hit for hit in hits if hit.path.startswith("/hooks/")]
    assert {object_of(hit)["id"] for hit in quick} == set(ids)
    assert all(hit.at - finish_of(sim, object_of(hit)["id"]) < 0.7 for hit in quick)


def test_reset_forgets_pending_deliveries(sim: RunningSim, receiver: Receiver, api: requests.Session) -> None:
    sim.configure(webhook_delay=0.3)
    image(api, sim, receiver.url())
    image(api, sim, receiver.url())
    assert counts(sim)["webhooks_pending"] == 2
    sim.reset()
    assert counts(sim)["webhooks_pending"] == 0
    time.sleep(0.8)
    assert receiver.got() == []
    assert all(value == 0 for value in counts(sim).values())
    assert sim.webhooks() == []


def _fault_trace(sim: RunningSim, api: requests.Session, receiver: Receiver) -> list[tuple[Any, ...]]:
    sim.reset()
    sim.configure(
        webhook_lost_rate=0.3, webhook_duplicate_rate=0.3, webhook_wrong_token_rate=0.3, webhook_body="mixed"
    )
    ids = [image(api, sim, receiver.url(), f"trace {n}") for n in range(10)]
    deadline = time.monotonic() + 3
    while counts(sim)["webhooks_pending"] and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    rows = sim.webhooks()
    return [
        tuple((r["lost"], r["shape"], r["url_ok"], r["copy"]) for r in rows if r["job_id"] == job_id)
        for job_id in ids
    ]


def test_a_seed_replays_the_same_webhook_faults(
    sim: RunningSim, receiver: Receiver, api: requests.Session
) -> None:
    first = _fault_trace(sim, api, receiver)
    second = _fault_trace(sim, api, receiver)
    assert first == second
    seen = {fault for trace in first for fault in trace}
    assert any(lost for lost, *_ in seen) and any(not ok for _, _, ok, _ in seen)
    assert any(copy == 2 for *_, copy in seen)


def test_webhook_knobs_are_checked_and_settable_over_http_and_the_cli(sim: RunningSim) -> None:
    config = f"{sim.url}/_sim/config"
    for bad in (
        {"webhook_lost_rate": 1.5},
        {"webhook_duplicate_rate": -0.1},
        {"webhook_wrong_token_rate": "x"},
        {"webhook_delay": -1},
        {"webhook_body": "envelope"},
    ):
        assert requests.post(config, json=bad, timeout=5).status_code == 400, bad
    good = {"webhook_body": "event", "webhook_delay": 0.5, "webhook_lost_rate": 0.25}
    answer = requests.post(config, json=good, timeout=5)
    assert answer.status_code == 200 and {k: answer.json()[k] for k in good} == good
    args = build_parser().parse_args(
        ["--webhook-body", "object", "--webhook-delay", "1.5", "--webhook-duplicate-rate", "0.1"]
    )
    parsed = config_from_args(args)
    assert (parsed.webhook_body, parsed.webhook_delay, parsed.webhook_duplicate_rate) == ("object", 1.5, 0.1)
    assert SimConfig().webhook_body == "mixed" and SimConfig().webhook_lost_rate == 0.0
