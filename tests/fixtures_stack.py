"""Fixtures for real local services (imported by tests/conftest.py and the stack's own tests).

``redis_server``, ``s3_server`` and ``sim_server`` are started once per session on free loopback ports;
``s3_store`` gives each test its own empty bucket on the shared S3 server; ``embedded_stack`` is a whole
stack without workers (start them with ``embedded_stack.start_worker()``; they stop with the module).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from storage.media import S3MediaStore
from workers.stack import EmbeddedStack, RedisServer, S3Server, SimulatorServer

FAST_SIM: dict[str, Any] = {
    "latency_image": 0.2,
    "latency_image_edit": 0.2,
    "latency_upscale": 0.2,
    "latency_video": 0.3,
    "latency_model": 0.3,
    "jitter": 0.0,
    "seed": 7,
}
_buckets = itertools.count(1)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def sim_server() -> Iterator[SimulatorServer]:
    server = SimulatorServer(**FAST_SIM)
    server.start()
    yield server
    server.close()


@pytest.fixture
def s3_store(s3_server: S3Server) -> S3MediaStore:
    """An S3 store on a fresh bucket of the session's S3 server."""
    bucket = f"test-bucket-{next(_buckets)}"
    s3_server.client().create_bucket(Bucket=bucket)
    return S3MediaStore(s3_server.client(), bucket)


@pytest.fixture(scope="module")
def embedded_stack() -> Iterator[EmbeddedStack]:
    with EmbeddedStack(sim_knobs=FAST_SIM) as stack:
        yield stack
