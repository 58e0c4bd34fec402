"""Shared fixtures: real local services (see tests/fixtures_stack.py) and engine helpers."""

from __future__ import annotations

from tests.fixtures_stack import (  # noqa: F401  (fixtures)
    embedded_stack,
    redis_server,
    s3_server,
    s3_store,
    sim_server,
)
