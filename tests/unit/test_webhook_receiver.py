"""The webhook receiver on its real Tornado server, with the wake-up replaced: status codes, body shapes,
the size cap, back-pressure, and no token in the logs."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator

import pytest
import requests

from letzai.webhook_tokens import new_token
from workers.webhooks import MAX_BODY, MAX_PENDING, RunningReceiver, body_shape, job_id_of, start_receiver


@pytest.fixture
def receiver() -> Iterator[tuple[RunningReceiver, list[str], set[str]]]:
    known: set[str] = set()
    woken: list[str] = []

    def wake(token: str, job_id: str | None = None) -> bool:
        woken.append(token)
        return token in known

    running = start_receiver(wake=wake)
    yield running, woken, known
    running.stop()


def test_known_token_is_accepted_in_either_body_shape_unknown_is_a_bare_404(receiver, caplog) -> None:  # type: ignore[no-untyped-def]
    running, woken, known = receiver
    token = new_token()
    known.add(token)
    url = f"http://127.0.0.1:{running.port}/letzflow/{token}"
    caplog.set_level(logging.INFO, logger="letzflow.webhooks")
    job = {"id": "job-1", "status": "ready"}
    assert requests.post(url, json=job, timeout=5).status_code == 202
    assert requests.post(url, json={"event": "image.ready", "data": job}, timeout=5).status_code == 202
    assert requests.post(url, data=b"not json", timeout=5).status_code == 202  # a hint, whatever the body
    stranger = requests.post(f"http://127.0.0.1:{running.port}/letzflow/{new_token()}", json=job, timeout=5)
    assert stranger.status_code == 404 and stranger.content == b""
    assert woken[:3] == [token] * 3
    health = requests.get(f"http://127.0.0.1:{running.port}/healthz", timeout=5).json()
    assert health["accepted"] == 3 and health["unknown"] == 1
    assert token not in caplog.text and "/letzflow/…" in caplog.text


def test_a_call_for_an_ended_step_is_counted_late_apart_from_strangers() -> None:
    ended = new_token()
    running = start_receiver(wake=lambda token, job_id=None: False, late=lambda token: token == ended)
    try:
        base = f"http://127.0.0.1:{running.port}/letzflow"
        assert requests.post(f"{base}/{ended}", json={"id": "j"}, timeout=5).status_code == 404
        assert requests.post(f"{base}/{new_token()}", json={"id": "j"}, timeout=5).status_code == 404
        health = requests.get(f"http://127.0.0.1:{running.port}/healthz", timeout=5).json()
        assert health["late"] == 1 and health["unknown"] == 1 and "accepted" not in health
    finally:
        running.stop()


def test_body_shapes() -> None:
    assert body_shape(json.dumps({"id": "x", "status": "ready"}).encode()) == "object"
    assert body_shape(json.dumps({"event": "video.ready", "data": {"id": "x"}}).encode()) == "event"
    assert body_shape(b"{") == "unreadable" and body_shape(b"") == "unreadable"


def test_an_oversized_body_is_refused_before_any_lookup(receiver) -> None:  # type: ignore[no-untyped-def]
    running, woken, known = receiver
    token = new_token()
    known.add(token)
    url = f"http://127.0.0.1:{running.port}/letzflow/{token}"
    try:
        answer = requests.post(url, data=b"x" * (MAX_BODY + 1), timeout=5)
        assert answer.status_code >= 400
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
        pass  # Tornado may close the connection instead of answering
    assert woken == []
    assert requests.post(url, json={"id": "j"}, timeout=5).status_code == 202  # and keeps serving


def test_calls_beyond_the_pending_bound_are_told_to_come_back() -> None:
    gate = threading.Event()

    def slow(token: str, job_id: str | None = None) -> bool:
        gate.wait(10)
        return True

    running = start_receiver(wake=slow)
    try:
        running.receiver.pending = MAX_PENDING  # as if that many lookups were waiting
        busy = requests.post(f"http://127.0.0.1:{running.port}/h/{new_token()}", timeout=5)
        assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
        running.receiver.pending = 0
        gate.set()
        assert requests.post(f"http://127.0.0.1:{running.port}/h/{new_token()}", timeout=5).status_code == 202
    finally:
        gate.set()
        running.stop()


def test_the_job_a_body_names_is_read_from_either_shape_and_only_as_a_uuid() -> None:
    job = "0b5c7a9e-3f41-4d2a-9c3e-5a1f2b7d8e90"
    assert job_id_of(json.dumps({"id": job, "status": "ready"}).encode()) == job
    assert job_id_of(json.dumps({"event": "upscale.ready", "data": {"id": job}}).encode()) == job
    assert job_id_of(json.dumps({"id": "job-1"}).encode()) is None  # not a LetzAI id
    assert job_id_of(json.dumps({"id": 7}).encode()) is None
    assert job_id_of(b"not json") is None and job_id_of(b"") is None and job_id_of(b"[1]") is None
