"""The webhook receiver (``letzflow webhooks``) as an embedded service, for the demo, tests and benchmarks."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from workers.stack_processes import HOST, Service, child_env


class WebhookReceiver(Service):
    """``letzflow webhooks`` on its own port, with ``env`` (it reads the ledger and Redis, sends polls).

    :attr:`base_url` is what ``LETZFLOW_WEBHOOK_URL`` must be for the simulator to call it.
    """

    name = "webhooks"

    def __init__(self, env: Mapping[str, str] | None = None, dir: str | Path | None = None) -> None:
        super().__init__(None, dir)
        self.env = dict(env or {})

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/letzflow"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "workers.cli", "webhooks", "--host", HOST, "--port", str(self.port)]

    def environment(self) -> dict[str, str]:
        return child_env(self.env)

    def is_ready(self) -> bool:
        try:
            return requests.get(f"http://{HOST}:{self.port}/healthz", timeout=1).ok
        except requests.RequestException:
            return False

    def health(self) -> dict[str, Any]:
        """What it has answered so far (``GET /healthz``: counts by outcome, no tokens)."""
        return requests.get(f"http://{HOST}:{self.port}/healthz", timeout=5).json()  # type: ignore[no-any-return]
