"""Shared fixtures: real local services (see tests/fixtures_stack.py) and engine helpers."""

from __future__ import annotations

from typing import Any

from tests import figures
from tests.fixtures_stack import (  # noqa: F401  (fixtures)
    embedded_stack,
    redis_server,
    s3_server,
    s3_store,
    sim_server,
)


def pytest_configure(config: Any) -> None:
    if not hasattr(config, "workerinput"):  # the controlling process (or the only one)
        figures.start_log()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    figures.terminal_summary(terminalreporter)
