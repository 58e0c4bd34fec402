"""``letzflow demo``'s exit codes and errors, and what ``--real`` asks before it spends credits: the key
from the environment, and the user's consent (a prompt, or ``LETZFLOW_DEMO_YES=1`` without a terminal)."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.console import Console
from rich.prompt import Confirm

from workers.errors import WorkersError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SIGINT, EXIT_SIGTERM = 0, 1, 2, 130, 143


class DemoError(WorkersError):
    """The demo cannot go on; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def real_api() -> dict[str, str]:
    """The key, base URL and organization for ``--real`` from the environment or ``.env``.

    Raises:
        DemoError: LETZAI_API_KEY is not set (exit 2).
    """
    from config.settings import Settings

    try:
        settings = Settings(letzai_simulator=False)
    except Exception as exc:
        if "LETZAI_API_KEY" in str(exc):
            raise DemoError(
                "--real needs LETZAI_API_KEY: export LETZAI_API_KEY=<your key> or put it in .env "
                "(without --real the demo runs on the local simulator, no key needed)",
                EXIT_USAGE,
            ) from exc
        raise DemoError(f"invalid settings: {exc}", EXIT_USAGE) from exc
    return {
        "api_key": settings.api_key,
        "base_url": settings.letzai_base_url,
        "organization_id": settings.letzai_organization_id or "",
    }


def confirm_real(console: Console, spec: Any, base_url: str) -> None:
    """Warn about credits and ask; without a terminal only ``LETZFLOW_DEMO_YES=1`` confirms.

    Raises:
        DemoError: declined (exit 1) or no way to ask (exit 2).
    """
    console.print(
        f"[bold yellow]warning:[/] --real sends {spec.total_jobs()} jobs ({spec.item_count} items x "
        f"{len(spec.steps)} steps) to {base_url} with your LETZAI_API_KEY. "
        "This spends your LetzAI credits (video jobs cost the most).",
        highlight=False,
    )
    if os.environ.get("LETZFLOW_DEMO_YES") == "1":
        return
    if not sys.stdin.isatty():
        raise DemoError(
            "stdin is not a terminal: set LETZFLOW_DEMO_YES=1 to confirm spending credits", EXIT_USAGE
        )
    if not Confirm.ask("Spend these credits?", console=console, default=False):
        raise DemoError("declined: nothing was submitted", EXIT_FAILED)
